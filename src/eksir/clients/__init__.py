"""The only modules that import boto3 or kubernetes; they translate SDK errors into eksir errors."""
