"""The CloudFormation stacks: deploy, describe, delete."""
