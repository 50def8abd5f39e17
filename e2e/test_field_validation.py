"""fieldValidation on create, update and patch: Strict refuses unknown and duplicate fields
with 400, Warn (the default) answers with one Warning header per field, Ignore drops them."""

import json

CMS = "/api/v1/namespaces/default/configmaps"


def body(name, **extra):
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}
    doc.update(extra)
    return doc


def test_strict_refuses_unknown_fields(skiff):
    status, _, out = skiff.request("POST", CMS + "?fieldValidation=Strict", body("strict", dataa={"x": "y"}, spec={"z": 1}))
    assert status == 400, out
    doc = json.loads(out)
    assert doc["reason"] == "BadRequest"
    assert doc["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "dataa", unknown field "spec"'
    )
    assert skiff.request("GET", CMS + "/strict")[0] == 404


def test_warn_is_the_default(skiff):
    status, headers, _ = skiff.request("POST", CMS, body("warned", dataa={"x": "y"}))
    assert status == 201
    assert headers["warning"] == '299 - "unknown field \\"dataa\\""'
    status, _, out = skiff.request("GET", CMS + "/warned")
    assert "dataa" not in json.loads(out)


def test_ignore_is_silent(skiff):
    status, headers, _ = skiff.request("POST", CMS + "?fieldValidation=Ignore", body("ignored", dataa={"x": "y"}))
    assert status == 201 and "warning" not in headers


def test_update_and_patch_are_checked(skiff):
    skiff.request("POST", CMS, body("target"))
    _, _, out = skiff.request("GET", CMS + "/target")
    current = json.loads(out)
    current["metadata"]["colour"] = "blue"
    status, _, out = skiff.request("PUT", CMS + "/target?fieldValidation=Strict", current)
    assert status == 400 and b'unknown field \\"metadata.colour\\"' in out
    status, _, out = skiff.request(
        "PATCH", CMS + "/target?fieldValidation=Strict", json.dumps({"bogus": 1}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 400 and b'unknown field \\"bogus\\"' in out


def test_bad_mode_is_a_bad_request(skiff):
    status, _, out = skiff.request("POST", CMS + "?fieldValidation=Loose", body("loose"))
    assert status == 400 and json.loads(out)["reason"] == "BadRequest"


DUPLICATED = (
    '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"},'
    ' "data": {"a": "first", "a": "second"}}'
)


def test_strict_refuses_duplicate_fields(skiff):
    status, _, out = skiff.request("POST", CMS + "?fieldValidation=Strict", DUPLICATED)
    assert status == 400, out
    assert json.loads(out)["message"].endswith('strict decoding error: duplicate field "data.a"')
    assert skiff.request("GET", CMS + "/twice")[0] == 404


def test_warn_reports_duplicate_fields_and_keeps_the_last(skiff):
    status, headers, _ = skiff.request("POST", CMS, DUPLICATED)
    assert status == 201
    assert headers["warning"] == '299 - "duplicate field \\"data.a\\""'
    _, _, out = skiff.request("GET", CMS + "/twice")
    assert json.loads(out)["data"] == {"a": "second"}
    status, _, out = skiff.request(
        "PATCH", CMS + "/twice?fieldValidation=Strict", '{"data": {"b": "1", "b": "2"}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert status == 400 and b'duplicate field \\"data.b\\"' in out
