"""The bus: frames across GPIO wires, through pigpiod (or a virtual bus)."""
