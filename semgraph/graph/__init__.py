"""The graph shapes semgraph owns and their readers/writers: cases, collections, feedback rounds; the engine snapshot derived from them; integrity checks and backups."""
