//! Typed fixtures over a running control plane: regions, data planes and workspaces made
//! through the public API, as the tests and benchmarks set them up.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::api::{Api, Reply, text};
use crate::processes::{DataplaneProcess, FerryOptions, FerryProcess};

/// The organization every instance starts with (Airbyte's default organization id).
pub const DEFAULT_ORGANIZATION_ID: &str = "00000000-0000-0000-0000-000000000000";

/// A `ferry up` (or `ferry server`, with [`FerryOptions::control_plane_only`]) with the
/// instance admin's client and the default workspace: where a test or a benchmark starts.
pub struct FerryUp {
    pub process: FerryProcess,
    pub admin: Api,
    /// The default workspace's id.
    pub workspace: Value,
    binary: PathBuf,
}

impl FerryUp {
    pub async fn start(binary: &Path, options: FerryOptions) -> Self {
        let process = FerryProcess::start(binary, options).await;
        let admin = process.admin_api().await;
        let workspace =
            admin.get("/api/public/v1/workspaces").await.body["data"][0]["workspaceId"].clone();
        Self {
            process,
            admin,
            workspace,
            binary: binary.to_owned(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.process.base_url
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Api {
        Api::with_client(self.base_url(), None, self.process.client())
    }

    /// A new region of the default organization, which must be created.
    pub async fn region(&self, name: &str) -> Region {
        let region = self
            .admin
            .create(
                "/api/public/v1/regions",
                json!({"name": name, "organizationId": DEFAULT_ORGANIZATION_ID}),
            )
            .await;
        Region::from_body(&region)
    }

    /// The region the default organization starts with (where the default workspace is).
    pub async fn default_region(&self) -> Region {
        let regions = self
            .admin
            .get(&format!(
                "/api/public/v1/regions?organizationId={DEFAULT_ORGANIZATION_ID}"
            ))
            .await;
        assert_eq!(regions.status, 200, "{}", regions.body);
        Region::from_body(&regions.body["data"][0])
    }

    /// A new data plane in `region`, which must be created, with the credentials shown once.
    pub async fn plane(&self, region: &Region, name: &str) -> Plane {
        let plane = self
            .admin
            .create(
                "/api/public/v1/dataplanes",
                json!({"name": name, "regionId": region.id}),
            )
            .await;
        Plane {
            id: text(&plane["dataplaneId"]),
            client_id: text(&plane["clientId"]),
            client_secret: text(&plane["clientSecret"]),
            control_plane_url: self.base_url().to_owned(),
            binary: self.binary.clone(),
        }
    }

    /// A new workspace in `region` (by its `regionId`), which must be created.
    pub async fn workspace_in(&self, region: &Region, name: &str) -> Workspace {
        self.new_workspace(json!({"name": name, "regionId": region.id}))
            .await
    }

    /// A new workspace whose `dataResidency` is `residency` (a region's name), which must be
    /// created.
    pub async fn resident_workspace(&self, name: &str, residency: &str) -> Workspace {
        self.new_workspace(json!({"name": name, "dataResidency": residency}))
            .await
    }

    /// The workspace the instance starts with, in the default region.
    pub fn default_workspace(&self) -> Workspace {
        Workspace {
            id: text(&self.workspace),
            admin: self.admin.clone(),
        }
    }

    async fn new_workspace(&self, request: Value) -> Workspace {
        let workspace = self
            .admin
            .create("/api/public/v1/workspaces", request)
            .await;
        Workspace {
            id: text(&workspace["workspaceId"]),
            admin: self.admin.clone(),
        }
    }

    /// A new source and destination in the default workspace, and a connection syncing
    /// `streams` (its `configurations.streams`) between them; the connection's id.
    pub async fn connection(&self, source: Value, destination: Value, streams: Value) -> Value {
        self.admin
            .connect(
                &self.workspace,
                source,
                destination,
                json!({"configurations": {"streams": streams}}),
            )
            .await
    }
}

/// A region, as the public API created or listed it.
#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub name: String,
}

impl Region {
    fn from_body(body: &Value) -> Self {
        Self {
            id: text(&body["regionId"]),
            name: text(&body["name"]),
        }
    }
}

/// A data plane created through the public API: its id and the credentials it was issued.
#[derive(Debug, Clone)]
pub struct Plane {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    control_plane_url: String,
    binary: PathBuf,
}

impl Plane {
    /// Starts `ferry dataplane` against its control plane with this plane's credentials (as
    /// the guide's Kubernetes secret passes them) and `env` added.
    pub fn start(&self, env: &[(&str, &str)]) -> DataplaneProcess {
        DataplaneProcess::start(
            &self.binary,
            &self.control_plane_url,
            &self.client_id,
            &self.client_secret,
            env,
        )
    }

    /// A client with a data-plane token of this plane, which must be issued.
    pub async fn api(&self) -> Api {
        let issued = Api::new(&self.control_plane_url, None)
            .create(
                "/api/v1/dataplanes/token",
                json!({"client_id": self.client_id, "client_secret": self.client_secret}),
            )
            .await;
        Api::new(&self.control_plane_url, Some(text(&issued["access_token"])))
    }
}

/// A workspace, with the admin client that made it.
#[derive(Clone)]
pub struct Workspace {
    pub id: String,
    admin: Api,
}

impl Workspace {
    /// POSTs a source named `name` with this `configuration`; the reply, whatever it is.
    pub async fn post_source(&self, name: &str, configuration: Value) -> Reply {
        self.post_actor("sources", name, configuration).await
    }

    /// POSTs a destination named `name` with this `configuration`; the reply, whatever it is.
    pub async fn post_destination(&self, name: &str, configuration: Value) -> Reply {
        self.post_actor("destinations", name, configuration).await
    }

    async fn post_actor(&self, kind: &str, name: &str, configuration: Value) -> Reply {
        self.admin
            .post(
                &format!("/api/public/v1/{kind}"),
                json!({"name": name, "workspaceId": self.id, "configuration": configuration}),
            )
            .await
    }

    /// POSTs a custom source definition (a `command` speaking the Airbyte protocol, and its
    /// name); the reply, whatever it is.
    pub async fn post_source_definition(&self, definition: Value) -> Reply {
        self.post_definition("sources", definition).await
    }

    /// POSTs a custom destination definition; the reply, whatever it is.
    pub async fn post_destination_definition(&self, definition: Value) -> Reply {
        self.post_definition("destinations", definition).await
    }

    async fn post_definition(&self, kind: &str, definition: Value) -> Reply {
        self.admin
            .post(
                &format!("/api/public/v1/workspaces/{}/definitions/{kind}", self.id),
                definition,
            )
            .await
    }

    /// A new source and destination here (from their `configuration`s) and a connection
    /// between them with `connection`'s extra fields, all of which must be created; the
    /// connection's id.
    pub async fn connect(&self, source: Value, destination: Value, connection: Value) -> String {
        let connection = self
            .admin
            .connect(&json!(self.id), source, destination, connection)
            .await;
        text(&connection)
    }
}
