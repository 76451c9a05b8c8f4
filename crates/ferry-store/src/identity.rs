//! Users, their permissions, their applications (API credentials) and bearer tokens.

use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decode::Columns;
use crate::{
    AccessToken, Application, NewApplication, NewPermission, Permission, PrincipalKind, Result,
    Store, StoreError, User, now_millis, placeholders,
};

fn user_from_row(row: &AnyRow) -> Result<User> {
    let columns = Columns::of("users", row);
    Ok(User {
        id: columns.uuid("id")?,
        name: columns.get("name")?,
        email: columns.get("email")?,
        created_at: columns.get("created_at")?,
    })
}

fn permission_from_row(row: &AnyRow) -> Result<Permission> {
    let columns = Columns::of("permissions", row);
    Ok(Permission {
        id: columns.uuid("id")?,
        user_id: columns.uuid("user_id")?,
        permission_type: columns.get("permission_type")?,
        workspace_id: columns.optional_uuid("workspace_id")?,
        organization_id: columns.optional_uuid("organization_id")?,
        created_at: columns.get("created_at")?,
    })
}

fn application_from_row(row: &AnyRow) -> Result<Application> {
    let columns = Columns::of("applications", row);
    Ok(Application {
        id: columns.uuid("id")?,
        user_id: columns.uuid("user_id")?,
        name: columns.get("name")?,
        client_id: columns.get("client_id")?,
        secret_hash: columns.get("secret_hash")?,
        created_at: columns.get("created_at")?,
    })
}

impl Store {
    pub async fn create_user(&self, id: Uuid, name: &str, email: &str) -> Result<User> {
        sqlx::query(
            "INSERT INTO users (id, name, email, email_key, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(email)
        .bind(email.to_lowercase())
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a user with email '{email}' already exists"))
            }
            other => other,
        })?;
        self.user(id).await
    }

    pub async fn user(&self, id: Uuid) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("user", id))?;
        user_from_row(&row)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE email_key = $1")
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users of the organization (those holding any permission in it or in one of its
    /// workspaces, and instance admins), optionally narrowed to ids and emails.
    pub async fn users_of_organization(
        &self,
        organization_id: Uuid,
        ids: &[Uuid],
        emails: &[String],
    ) -> Result<Vec<User>> {
        let mut values = vec![organization_id.to_string(), organization_id.to_string()];
        let mut sql =
            "SELECT DISTINCT users.* FROM users JOIN permissions ON permissions.user_id = users.id
             LEFT JOIN workspaces ON workspaces.id = permissions.workspace_id
             WHERE (permissions.organization_id = $1 OR workspaces.organization_id = $2
                    OR permissions.permission_type = 'instance_admin')"
                .to_owned();
        if !ids.is_empty() {
            sql.push_str(&format!(
                " AND users.id IN ({})",
                placeholders(values.len() + 1, ids.len())
            ));
            values.extend(ids.iter().map(Uuid::to_string));
        }
        if !emails.is_empty() {
            sql.push_str(&format!(
                " AND users.email_key IN ({})",
                placeholders(values.len() + 1, emails.len())
            ));
            values.extend(emails.iter().map(|email| email.to_lowercase()));
        }
        sql.push_str(" ORDER BY users.created_at, users.id");
        self.fetch_bound(&sql, values, &[])
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    pub async fn create_permission(&self, permission: &NewPermission) -> Result<Permission> {
        sqlx::query(
            "INSERT INTO permissions (id, user_id, permission_type, workspace_id, organization_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(permission.id.to_string())
        .bind(permission.user_id.to_string())
        .bind(&permission.permission_type)
        .bind(permission.workspace_id.map(|id| id.to_string()))
        .bind(permission.organization_id.map(|id| id.to_string()))
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        self.permission(permission.id).await
    }

    pub async fn permission(&self, id: Uuid) -> Result<Permission> {
        let row = sqlx::query("SELECT * FROM permissions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("permission", id))?;
        permission_from_row(&row)
    }

    /// Permissions, filtered by user and/or organization (an organization's permissions
    /// include those on its workspaces).
    pub async fn permissions(
        &self,
        user_id: Option<Uuid>,
        organization_id: Option<Uuid>,
    ) -> Result<Vec<Permission>> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(user_id) = user_id {
            values.push(user_id.to_string());
            conditions.push(format!("permissions.user_id = ${}", values.len()));
        }
        if let Some(organization_id) = organization_id {
            values.push(organization_id.to_string());
            let first = values.len();
            values.push(organization_id.to_string());
            conditions.push(format!(
                "(permissions.organization_id = ${first} OR workspaces.organization_id = ${})",
                first + 1
            ));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT permissions.* FROM permissions
             LEFT JOIN workspaces ON workspaces.id = permissions.workspace_id
             {where_clause} ORDER BY permissions.created_at, permissions.id"
        );
        self.fetch_bound(&sql, values, &[])
            .await?
            .iter()
            .map(permission_from_row)
            .collect()
    }

    pub async fn update_permission(&self, id: Uuid, permission_type: &str) -> Result<Permission> {
        let result = sqlx::query("UPDATE permissions SET permission_type = $1 WHERE id = $2")
            .bind(permission_type)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("permission", id));
        }
        self.permission(id).await
    }

    pub async fn delete_permission(&self, id: Uuid) -> Result<()> {
        let result = sqlx::query("DELETE FROM permissions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("permission", id));
        }
        Ok(())
    }

    pub async fn create_application(&self, application: &NewApplication) -> Result<Application> {
        sqlx::query(
            "INSERT INTO applications (id, user_id, name, client_id, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(application.id.to_string())
        .bind(application.user_id.to_string())
        .bind(&application.name)
        .bind(&application.client_id)
        .bind(&application.secret_hash)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        self.application(application.id).await
    }

    pub async fn application(&self, id: Uuid) -> Result<Application> {
        let row = sqlx::query("SELECT * FROM applications WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("application", id))?;
        application_from_row(&row)
    }

    pub async fn application_by_client_id(&self, client_id: &str) -> Result<Option<Application>> {
        let row = sqlx::query("SELECT * FROM applications WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(application_from_row).transpose()
    }

    pub async fn applications_of_user(&self, user_id: Uuid) -> Result<Vec<Application>> {
        sqlx::query("SELECT * FROM applications WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(application_from_row)
            .collect()
    }

    /// Deletes the application and revokes its tokens.
    pub async fn delete_application(&self, id: Uuid) -> Result<Application> {
        let application = self.application(id).await?;
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM access_tokens WHERE principal_kind = $1 AND principal_id = $2")
            .bind(PrincipalKind::Application.as_str())
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM applications WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(application)
    }

    pub async fn insert_access_token(&self, token: &AccessToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, principal_kind, principal_id, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.token_hash)
        .bind(token.principal_kind.as_str())
        .bind(token.principal_id.to_string())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token with that hash if it exists and has not expired.
    pub async fn live_access_token(&self, token_hash: &str) -> Result<Option<AccessToken>> {
        let row =
            sqlx::query("SELECT * FROM access_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now_millis())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let columns = Columns::of("access_tokens", &row);
        let kind: String = columns.get("principal_kind")?;
        let principal_kind = PrincipalKind::parse(&kind).ok_or_else(|| {
            columns.corrupt("principal_kind", format!("unknown principal kind '{kind}'"))
        })?;
        Ok(Some(AccessToken {
            token_hash: columns.get("token_hash")?,
            principal_kind,
            principal_id: columns.uuid("principal_id")?,
            expires_at: columns.get("expires_at")?,
        }))
    }

    /// Drops expired tokens; returns how many.
    pub async fn purge_expired_access_tokens(&self) -> Result<u64> {
        let result = sqlx::query("DELETE FROM access_tokens WHERE expires_at <= $1")
            .bind(now_millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
