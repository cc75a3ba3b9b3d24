"""RQ job functions (ids in, one service call), the worker entry point and the periodic schedule."""
