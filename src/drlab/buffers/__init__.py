"""Storage: replay (uniform ring, sum-tree PER, the course notebooks' symlog-softmax), n-step windows,
on-policy rollouts and REINFORCE's episode storage. Storage never steps an env."""
