"""The add-on's user interface: PropertyGroups, operators and the sidebar panel."""
