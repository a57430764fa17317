"""Code every mp3converter service shares, so that there is one copy of it.

Each service folder is its own import root; this package is installed beside a
service's requirements (by the Makefile in development, by the Dockerfile in an image).
"""
