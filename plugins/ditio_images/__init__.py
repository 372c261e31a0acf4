"""Sync images attached to Ditio construction projects into S3."""
