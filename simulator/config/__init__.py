"""The OLT's configuration engine: a BBF-shaped data tree with NETCONF edit semantics.

Every face (NETCONF, SNMP, CLI) changes configuration through this package, so a service
added on one face is the same data the other faces read.
"""
