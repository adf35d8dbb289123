"""The stacks that make up a deployment."""
