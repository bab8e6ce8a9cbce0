"""A tiny Flask app run by envctl as the `web` service (see envctl.yaml)."""

from flask import Flask, render_template

import greeting

app = Flask(__name__)


@app.get("/")
def index():
    return render_template("index.html", message=greeting.MESSAGE)


@app.get("/health")
def health():
    return {"status": "ok"}
