//! ListSecrets: the metadata of many secrets in few calls. A call takes up to 10 name filters
//! and returns pages of up to 100 secrets, each filter matching names by prefix. Secrets kept
//! under one path (`team/app-1`, `team/app-2`) are listed by that path, which costs a page per
//! 100 secrets instead of a call per 10 names; a path holding far more secrets than are wanted
//! is given up after the pages its names would have cost, and its names are listed one by one.

use super::{list_entry_facts, name_prefix, refers_to, unique};
use crate::aws::cache::Scope;
use crate::aws::error::AwsError;
use crate::aws::retry::Operation;
use crate::aws::session::{AwsFacts, Target};
use crate::policy::facts::SecretFacts;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use std::collections::{BTreeMap, HashMap};

const LIST_SECRETS: Operation = Operation::new("secretsmanager:ListSecrets", "secret");
/// Most values one ListSecrets `name` filter takes.
const LIST_FILTER_VALUES: usize = 10;
/// Largest ListSecrets page.
const LIST_PAGE: i32 = 100;

/// One name filter value and the wanted names it covers.
#[derive(Debug, PartialEq)]
pub(super) struct NameFilter {
    pub value: String,
    pub names: Vec<String>,
}

/// The filters that list `names`: a path (the name up to its last `/`) shared by two or more of
/// them, else the name itself.
pub(super) fn name_filters(names: &[&str]) -> Vec<NameFilter> {
    let mut by_path: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for name in names {
        let path = name.rfind('/').map_or(*name, |at| &name[..=at]);
        by_path.entry(path).or_default().push(name.to_string());
    }
    let mut filters = Vec::new();
    for (path, mut under) in by_path {
        under.sort();
        under.dedup();
        if under.len() >= 2 {
            filters.push(NameFilter { value: path.to_string(), names: under });
        } else {
            filters
                .extend(under.into_iter().map(|name| NameFilter { value: name.clone(), names: vec![name] }));
        }
    }
    filters
}

/// Pages a name-filtered listing pays for before it is given up: what listing its names one
/// filter each would cost, and one more.
fn page_budget(filters: &[NameFilter]) -> usize {
    filters.iter().map(|f| f.names.len()).sum::<usize>().div_ceil(LIST_FILTER_VALUES) + 1
}

impl AwsFacts {
    /// Reads the metadata of those of `secret_ids` not cached into the cache, when ListSecrets
    /// pages can: a refresh due soon then costs nothing. Unlike [`SecretsApi::secrets`], nothing
    /// is read one by one, and a failure is left to the refresh itself to meet.
    pub async fn read_ahead_secret_metadata(&self, target: &Target, secret_ids: &[String]) {
        let Ok(scope) = self.scope(target) else { return };
        let missing: Vec<&String> = unique(secret_ids)
            .filter(|id| self.inner.cache.peek::<SecretFacts>(&scope, id).is_none())
            .collect();
        if missing.len() >= self.inner.settings.list_secrets_from {
            let _ = self.list_into_cache(&scope, &missing).await;
        }
    }

    /// Lists `secret_ids` and caches what it finds of them, by id.
    pub(super) async fn list_into_cache<'a>(
        &self,
        scope: &Scope,
        secret_ids: &[&'a String],
    ) -> Result<HashMap<&'a str, SecretFacts>, AwsError> {
        let listed = self.list_named(scope, secret_ids).await?;
        let by_name: HashMap<&str, &SecretFacts> =
            listed.iter().map(|facts| (facts.name.as_str(), facts)).collect();
        let mut found = HashMap::new();
        for id in secret_ids {
            let named = by_name.get(name_prefix(id)).copied().filter(|facts| refers_to(id, facts));
            // A partial ARN whose name ends like a random suffix is not found by name.
            if let Some(facts) = named.or_else(|| listed.iter().find(|facts| refers_to(id, facts))) {
                self.inner.cache.put(scope, id, Ok(facts.clone()));
                found.insert(id.as_str(), facts.clone());
            }
        }
        Ok(found)
    }

    /// Metadata of the secrets (and possibly others) whose names start with one of `prefixes`.
    pub(super) async fn list_in_scope(
        &self,
        scope: &Scope,
        prefixes: &[String],
    ) -> Result<Vec<SecretFacts>, AwsError> {
        let mut listed = Vec::new();
        for values in prefixes.chunks(LIST_FILTER_VALUES) {
            self.list_pages(scope, values, &mut listed, None).await?;
        }
        Ok(listed)
    }

    /// Metadata of the secrets `secret_ids` (names or ARNs) name, among others: see the module.
    pub(super) async fn list_named(
        &self,
        scope: &Scope,
        secret_ids: &[&String],
    ) -> Result<Vec<SecretFacts>, AwsError> {
        let names: Vec<&str> = secret_ids.iter().map(|id| name_prefix(id)).collect();
        let mut listed = Vec::new();
        for chunk in name_filters(&names).chunks(LIST_FILTER_VALUES) {
            let values: Vec<String> = chunk.iter().map(|f| f.value.clone()).collect();
            let complete = self.list_pages(scope, &values, &mut listed, Some(page_budget(chunk))).await?;
            if !complete {
                let names: Vec<String> = chunk.iter().flat_map(|f| f.names.iter().cloned()).collect();
                listed.extend(self.list_in_scope(scope, &names).await?);
            }
        }
        Ok(listed)
    }

    /// Lists the secrets matching any of `values` into `listed`, page by page. `false` when it
    /// stopped at `max_pages` with more to come.
    async fn list_pages(
        &self,
        scope: &Scope,
        values: &[String],
        listed: &mut Vec<SecretFacts>,
        max_pages: Option<usize>,
    ) -> Result<bool, AwsError> {
        let client = self.clients(scope).secrets.clone();
        let filter =
            Filter::builder().key(FilterNameStringType::Name).set_values(Some(values.to_vec())).build();
        let id = values.join(",");
        let mut next_token: Option<String> = None;
        for _ in 0..max_pages.unwrap_or(usize::MAX) {
            let out = self
                .inner
                .requester
                .send(LIST_SECRETS, &id, || {
                    client
                        .list_secrets()
                        .filters(filter.clone())
                        .max_results(LIST_PAGE)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            listed.extend(out.secret_list.unwrap_or_default().into_iter().map(list_entry_facts));
            match out.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(true),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(value: &str, names: &[&str]) -> NameFilter {
        NameFilter { value: value.into(), names: names.iter().map(|n| n.to_string()).collect() }
    }

    #[test]
    fn names_sharing_a_path_are_listed_by_it_and_a_lone_name_by_itself() {
        let names = ["team-a/db", "team-a/api", "team-b/db", "plain", "team-a/db", "deep/x/y", "deep/x/z"];
        assert_eq!(
            name_filters(&names),
            vec![
                filter("deep/x/", &["deep/x/y", "deep/x/z"]),
                filter("plain", &["plain"]),
                filter("team-a/", &["team-a/api", "team-a/db"]),
                filter("team-b/db", &["team-b/db"]),
            ]
        );
    }

    #[test]
    fn a_path_listing_pays_at_most_one_page_more_than_its_names_one_by_one() {
        let names: Vec<String> = (0..25).map(|i| format!("big/s-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let filters = name_filters(&names);
        assert_eq!(filters.len(), 1);
        assert_eq!(page_budget(&filters), 4, "25 names cost 3 calls of 10 filters");
    }
}
