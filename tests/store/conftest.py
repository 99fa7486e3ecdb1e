"""Fixtures of the store tests: the shared (S3 + DynamoDB) case store on moto server."""

from tests.store.s3_fixtures import shared_store

__all__ = ["shared_store"]
