"""Process machinery: what one server process is and runs (see ``process``)."""
