"""The typed front: declare a pipeline and its specs; builds a plan, executes nothing."""
