"""Who am I and what may I do, asked through kubectl: the admin from the generated
kubeconfig, and a user signed in with a static bearer token."""

import pytest

# `kubectl auth whoami` and `can-i` post their reviews as protobuf (see
# test_kubectl_create_imperative.py); strict, so they fail the run once protobuf works.

SKIFF_FILES = {"tokens.csv": 'viewer-token-123,jane,1001,"developers,qa"\n'}
SKIFF_ARGS = ["--token-auth-file", "{root}/tokens.csv"]


def test_whoami_admin(kubectl):
    out = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
    username, groups = out.split(" ", 1)
    assert username == "skiff-admin"
    assert "system:masters" in groups and "system:authenticated" in groups


def test_whoami_token_user(kubectl):
    out = kubectl("auth", "whoami", "--token=viewer-token-123")
    assert "jane" in out
    assert "developers" in out and "qa" in out


def test_can_i(kubectl):
    assert kubectl("auth", "can-i", "create", "pods").strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "nodes").strip() == "yes"
    res = kubectl("auth", "can-i", "list", "pods", "--token=viewer-token-123", check=False)
    assert res.returncode == 1 and res.stdout.strip() == "no"


def test_token_user_is_forbidden_with_a_clear_message(kubectl):
    res = kubectl("get", "pods", "-n", "default", "--token=viewer-token-123", check=False)
    assert res.returncode == 1
    assert 'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"' in res.stderr


def test_unknown_token_is_unauthorized(kubectl):
    res = kubectl("get", "pods", "--token=not-a-token", check=False)
    assert res.returncode == 1
    assert "Unauthorized" in res.stderr or "must be logged in" in res.stderr
