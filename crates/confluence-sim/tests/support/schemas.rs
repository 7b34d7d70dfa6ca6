//! Hand-written schemas for the endpoints Atlassian does not document (knowledge-base switches,
//! `/cgraphql`), matching the shapes `confluence-client`'s models read and `src/access` serves.

#![allow(dead_code)]

use serde_json::{Value, json};

/// `POST /wiki/rest/knowledge-base/1.0/permissions/space/{unlicensedview,anonymousview}`.
pub fn kb_space_permission() -> Value {
    json!({
        "type": "object",
        "required": ["spaceKey", "permission", "enabled"],
        "properties": {
            "spaceKey": { "type": "string", "minLength": 1 },
            "permission": { "enum": ["unlicensedview", "anonymousview"] },
            "enabled": { "type": "boolean" }
        }
    })
}

/// `POST /wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess`.
pub fn kb_global_permission() -> Value {
    json!({
        "type": "object",
        "required": ["permission", "enabled"],
        "properties": {
            "permission": { "const": "unlicensedaccess" },
            "enabled": { "type": "boolean" }
        }
    })
}

/// `POST /cgraphql?q=GuestDataQuery`.
pub fn guest_data_query() -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["externalCollaboratorsByCriteria"],
                "properties": {
                    "externalCollaboratorsByCriteria": {
                        "type": "object",
                        "required": ["nodes", "pageInfo"],
                        "properties": {
                            "nodes": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["accountId", "email", "name", "spaces"],
                                    "properties": {
                                        "accountId": { "type": "string", "minLength": 1 },
                                        "email": { "type": "string" },
                                        "name": { "type": "string" },
                                        "spaces": {
                                            "type": "array",
                                            "maxItems": 1,
                                            "items": {
                                                "type": "object",
                                                "required": ["id", "key", "name"],
                                                "properties": {
                                                    "id": { "type": "string" },
                                                    "key": { "type": "string" },
                                                    "name": { "type": "string" }
                                                }
                                            }
                                        }
                                    }
                                }
                            },
                            "pageInfo": {
                                "type": "object",
                                "required": ["hasNextPage", "endCursor"],
                                "properties": {
                                    "hasNextPage": { "type": "boolean" },
                                    "endCursor": { "type": ["string", "null"] }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `POST /cgraphql?q=ResetExCoSpacePermissionsMutation`.
pub fn reset_exco_mutation() -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["resetExCoSpacePermissions"],
                "properties": {
                    "resetExCoSpacePermissions": {
                        "type": "object",
                        "required": ["success", "errors"],
                        "properties": {
                            "success": { "type": "boolean" },
                            "errors": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": { "message": { "type": "string" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// A GraphQL error answer (`{"errors":[{"message":…}]}`), e.g. for an unknown operation.
pub fn graphql_errors() -> Value {
    json!({
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": { "message": { "type": "string" } }
                }
            }
        }
    })
}
