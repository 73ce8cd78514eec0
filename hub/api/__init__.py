"""The HTTP APIs, one blueprint per family, each beside the module that shapes its JSON."""
