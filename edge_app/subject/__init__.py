"""The subject stage: find the hand or face in a frame, so models learn from its crop."""
