"""The CXone side: token cache, rate limiter, skill directory and the HTTP client."""
