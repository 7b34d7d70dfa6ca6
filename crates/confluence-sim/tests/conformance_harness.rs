//! Self-tests of the conformance harness: it must reject what the spec rejects, or the
//! conformance test proves nothing.

mod support;

use serde_json::json;
use support::openapi::{Spec, assert_conforms, check_conforms};

fn group(id: serde_json::Value) -> serde_json::Value {
    json!({ "type": "group", "name": "kb-readers", "id": id, "_links": { "self": "http://x/wiki/rest/api/group/by-id?id=1" } })
}

#[test]
fn a_complete_v1_group_passes() {
    assert_conforms(
        Spec::V1,
        "GET",
        "/wiki/rest/api/group/by-name",
        200,
        &group(json!("abc")),
    );
}

#[test]
fn a_v1_group_missing_a_required_field_fails() {
    let mut g = group(json!("abc"));
    g.as_object_mut().unwrap().remove("id");
    let err = check_conforms(Spec::V1, "GET", "/wiki/rest/api/group/by-name", 200, &g).unwrap_err();
    assert!(err.contains("\"id\" is a required property"), "{err}");
}

#[test]
fn a_v1_group_with_a_wrong_type_fails_and_names_the_instance_path() {
    let err = check_conforms(
        Spec::V1,
        "GET",
        "/wiki/rest/api/group/by-name",
        200,
        &group(json!(5)),
    )
    .unwrap_err();
    assert!(err.contains("/id"), "{err}");
}

#[test]
#[should_panic(expected = "does not conform")]
fn assert_conforms_panics_on_a_bad_body() {
    assert_conforms(
        Spec::V1,
        "GET",
        "/wiki/rest/api/group/by-name",
        200,
        &json!({ "type": "group" }),
    );
}

#[test]
fn refs_inside_arrays_are_resolved_and_checked() {
    let ok = json!({ "results": [{ "accountId": "a", "isExternalCollaborator": true, "accountStatus": "active" }], "_links": {} });
    assert_conforms(Spec::V2, "POST", "/wiki/api/v2/users-bulk", 200, &ok);
    let bad = json!({ "results": [{ "accountId": "a", "isExternalCollaborator": "yes" }] });
    let err = check_conforms(Spec::V2, "POST", "/wiki/api/v2/users-bulk", 200, &bad).unwrap_err();
    assert!(err.contains("/results/0/isExternalCollaborator"), "{err}");
    let bad_enum = json!({ "results": [{ "accountId": "a", "accountStatus": "sleeping" }] });
    assert!(check_conforms(Spec::V2, "POST", "/wiki/api/v2/users-bulk", 200, &bad_enum).is_err());
}

#[test]
fn nullable_fields_accept_null_and_others_do_not() {
    // v1 User.email is nullable; User.publicName is not.
    let page = |user: serde_json::Value| json!({ "results": [user], "start": 0, "limit": 200, "size": 1, "_links": {} });
    let with_null_email =
        json!({ "type": "known", "accountId": "a", "email": null, "publicName": "A" });
    assert_conforms(
        Spec::V1,
        "GET",
        "/wiki/rest/api/group/{groupId}/membersByGroupId",
        200,
        &page(with_null_email),
    );
    let with_null_public_name = json!({ "type": "known", "accountId": "a", "publicName": null });
    assert!(
        check_conforms(
            Spec::V1,
            "GET",
            "/wiki/rest/api/group/{id}/membersByGroupId",
            200,
            &page(with_null_public_name)
        )
        .is_err()
    );
}

#[test]
fn date_time_format_is_asserted() {
    let space = |created: &str| json!({ "id": "1", "key": "KB", "name": "KB", "type": "global", "status": "current", "createdAt": created });
    assert_conforms(
        Spec::V2,
        "GET",
        "/wiki/api/v2/spaces/{id}",
        200,
        &space("2024-01-02T03:04:05.000Z"),
    );
    assert!(
        check_conforms(
            Spec::V2,
            "GET",
            "/wiki/api/v2/spaces/{id}",
            200,
            &space("yesterday")
        )
        .is_err()
    );
}

#[test]
fn undocumented_paths_and_statuses_are_errors_not_passes() {
    let err = check_conforms(
        Spec::V2,
        "GET",
        "/wiki/api/v2/nothing-here",
        200,
        &json!({}),
    )
    .unwrap_err();
    assert!(err.contains("no path"), "{err}");
    let err = check_conforms(
        Spec::V2,
        "DELETE",
        "/wiki/api/v2/users-bulk",
        200,
        &json!({}),
    )
    .unwrap_err();
    assert!(err.contains("no DELETE"), "{err}");
    let err =
        check_conforms(Spec::V2, "POST", "/wiki/api/v2/users-bulk", 418, &json!({})).unwrap_err();
    assert!(err.contains("not documented"), "{err}");
}

#[test]
fn documented_errors_without_a_schema_use_the_family_error_shape() {
    let v2 = json!({ "errors": [{ "status": 400, "code": "INVALID_REQUEST_PARAMETER", "title": "Bad Request", "detail": "x" }] });
    assert_conforms(Spec::V2, "POST", "/wiki/api/v2/users-bulk", 400, &v2);
    assert!(
        check_conforms(
            Spec::V2,
            "POST",
            "/wiki/api/v2/users-bulk",
            400,
            &json!({ "message": "x" })
        )
        .is_err()
    );
    let v1 = json!({ "statusCode": 403, "message": "no", "data": { "authorized": false, "valid": true, "errors": [], "successful": false } });
    assert_conforms(Spec::V1, "POST", "/wiki/rest/api/group", 403, &v1);
    assert!(
        check_conforms(
            Spec::V1,
            "POST",
            "/wiki/rest/api/group",
            403,
            &json!({ "statusCode": "403" })
        )
        .is_err()
    );
    assert_conforms(
        Spec::Jira,
        "POST",
        "/rest/api/3/user",
        400,
        &json!({ "errorMessages": ["x"], "errors": {} }),
    );
    assert!(
        check_conforms(
            Spec::Jira,
            "POST",
            "/rest/api/3/user",
            400,
            &json!({ "message": "x" })
        )
        .is_err()
    );
}

#[test]
fn success_without_a_documented_body_must_be_empty() {
    assert_conforms(
        Spec::V1,
        "DELETE",
        "/wiki/rest/api/space/{spaceKey}/permission/{id}",
        204,
        &serde_json::Value::Null,
    );
    assert!(
        check_conforms(
            Spec::V1,
            "DELETE",
            "/wiki/rest/api/space/{k}/permission/{id}",
            204,
            &json!({})
        )
        .is_err()
    );
}

#[test]
fn jira_closed_objects_reject_unknown_fields() {
    let user = |avatars: serde_json::Value| json!({ "accountId": "a", "accountType": "atlassian", "active": true, "avatarUrls": avatars, "self": "http://x/rest/api/3/user?accountId=a" });
    assert_conforms(
        Spec::Jira,
        "POST",
        "/rest/api/3/user",
        201,
        &user(json!({ "48x48": "http://x/a.png" })),
    );
    assert!(
        check_conforms(
            Spec::Jira,
            "POST",
            "/rest/api/3/user",
            201,
            &user(json!({ "64x64": "http://x/a.png" }))
        )
        .is_err()
    );
}

#[test]
fn v1_space_permissions_need_both_access_flags() {
    let space = |perm: serde_json::Value| json!({ "key": "KB", "name": "KB", "type": "global", "status": "current", "permissions": [perm], "_expandable": {}, "_links": {} });
    let op = json!({ "operation": "read", "targetType": "space" });
    assert_conforms(
        Spec::V1,
        "GET",
        "/wiki/rest/api/space/{spaceKey}",
        200,
        &space(json!({ "operation": op, "anonymousAccess": false, "unlicensedAccess": true })),
    );
    // (Space is nullable, so the error is reported on the whole body, not the field.)
    assert!(
        check_conforms(
            Spec::V1,
            "GET",
            "/wiki/rest/api/space/{spaceKey}",
            200,
            &space(json!({ "operation": op, "anonymousAccess": false })),
        )
        .is_err(),
        "unlicensedAccess is required"
    );
    assert!(
        check_conforms(
            Spec::V1,
            "GET",
            "/wiki/rest/api/space/{spaceKey}",
            200,
            &space(json!({ "operation": { "operation": "view", "targetType": "space" }, "anonymousAccess": false, "unlicensedAccess": true })),
        )
        .is_err(),
        "operation names are an enum"
    );
}
