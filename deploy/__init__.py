"""Deployment files, and the generators of those that are checked in (``make deploy-files``)."""
