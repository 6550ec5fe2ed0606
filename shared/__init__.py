"""What the ingress and the workers share: settings, the task message, Redis keys, the CXone client."""
