"""An example vidbench plugin: the `tiny3d` architecture and the `csvlist` dataset format."""
