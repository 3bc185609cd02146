"""Replay buffers (uniform ring, sum-tree PER, the seed's symlog-softmax) and rollout storage."""
