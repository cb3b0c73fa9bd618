//! The body of `POST /api/v1/api-keys`: a name for people and the scopes the
//! new key holds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::required_text;
use crate::error::AppError;
use crate::keys::scopes_from_names;
use crate::model::Scope;

/// `POST /api/v1/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    /// What the key is for ("ELD feed", "dispatch app").
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Names of scopes (kept as text so an unknown one is named in the answer).
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// The scopes a key may hold (the document's names for [`Scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    Orders,
    Positions,
    Read,
    Admin,
}

impl NewApiKeyBody {
    /// The key's name and scopes, or a 400 naming the field.
    pub(crate) fn check(&self) -> Result<(String, Vec<Scope>), AppError> {
        let name = required_text(&self.name, "name", 100)?;
        let names: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        Ok((name, scopes_from_names(&names, "scopes")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_scope_names_are_the_scopes() {
        let documented = [
            ScopeName::Orders,
            ScopeName::Positions,
            ScopeName::Read,
            ScopeName::Admin,
        ];
        let names: Vec<String> = documented
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .expect("a name")
                    .as_str()
                    .expect("text")
                    .to_owned()
            })
            .collect();
        let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, scopes);
    }
}
