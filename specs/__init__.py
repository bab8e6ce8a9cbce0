"""envctl specs: the envctl.yaml model and schema, image references, digests, the lockfile.

Pure data: parse, validate, serialise. Imports nothing of engine/, runtime/ or envctl/.
Heavy parsers (yaml, jsonschema) are imported lazily by the functions that need them.
"""
