"""World plug-ins."""
