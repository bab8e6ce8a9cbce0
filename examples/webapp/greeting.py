# Edit this line while `envctl up` runs: the `web` service restarts and serves the new text.
MESSAGE = "Hello from an envctl environment"
