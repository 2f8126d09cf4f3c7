"""The interface the learning loop talks to (read, program, multiply, advance time), a batched
simulated chip, and a client/server for a real bench over a JSON-lines protocol.
"""
