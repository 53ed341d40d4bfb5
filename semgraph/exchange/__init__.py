"""Data in and out: ingest of images, reader CSVs and AIM files; exports of learned relations and proposals."""
