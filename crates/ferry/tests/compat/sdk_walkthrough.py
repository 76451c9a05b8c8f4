"""Drives Ferry with Airbyte's official Python SDK (airbyte-api), as its users would.

Usage: sdk_walkthrough.py BASE_URL CLIENT_ID CLIENT_SECRET
Exits non-zero, with the failing step, on any mismatch.
"""

import sys
import time

import airbyte_api
from airbyte_api import api, models

base, client_id, client_secret = sys.argv[1:4]
root = base + "/api/public/v1"
sdk = airbyte_api.AirbyteAPI(
    server_url=root,
    security=models.Security(
        client_credentials=models.SchemeClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            token_url=root + "/applications/token",
        )
    ),
)


def step(name):
    print(f"step: {name}", flush=True)


step("health")
assert sdk.health.get_health_check().status_code == 200

step("organizations")
organizations = sdk.organizations.list_organizations_for_user().organizations_response.data
assert organizations[0].organization_id == "00000000-0000-0000-0000-000000000000", organizations

step("create workspace")
created = sdk.workspaces.create_workspace(request=models.WorkspaceCreateRequest(name="SDK workspace"))
workspace = created.workspace_response
assert workspace.name == "SDK workspace" and workspace.data_residency == "auto", workspace

step("update and read workspace")
updated = sdk.workspaces.update_workspace(
    request=api.UpdateWorkspaceRequest(
        workspace_id=workspace.workspace_id,
        workspace_update_request=models.WorkspaceUpdateRequest(name="SDK workspace, renamed"),
    )
).workspace_response
assert updated.name == "SDK workspace, renamed", updated
read = sdk.workspaces.get_workspace(request=api.GetWorkspaceRequest(workspace_id=workspace.workspace_id))
assert read.workspace_response.workspace_id == workspace.workspace_id

step("list workspaces, following next")
seen = []
offset = 0
while True:
    page = sdk.workspaces.list_workspaces(request=api.ListWorkspacesRequest(limit=1, offset=offset)).workspaces_response
    seen.extend(item.workspace_id for item in page.data)
    if not page.next:
        break
    offset += 1
assert workspace.workspace_id in seen and len(seen) == len(set(seen)) >= 2, seen

step("create source and destination")
source = sdk.sources.create_source(
    request=models.SourceCreateRequest(
        name="faker",
        workspace_id=workspace.workspace_id,
        configuration=models.SourceFaker(count=500, seed=7),
    )
).source_response
assert source.source_type == "faker", source
destination = sdk.destinations.create_destination(
    request=models.DestinationCreateRequest(
        name="null",
        workspace_id=workspace.workspace_id,
        configuration=models.DestinationDevNull(test_destination=models.Silent()),
    )
).destination_response
assert destination.destination_type == "dev-null", destination

step("create connection")
connection = sdk.connections.create_connection(
    request=models.ConnectionCreateRequest(source_id=source.source_id, destination_id=destination.destination_id, name="sdk")
).connection_response
assert connection.workspace_id == workspace.workspace_id, connection
listed = sdk.connections.list_connections(
    request=api.ListConnectionsRequest(workspace_ids=[workspace.workspace_id])
).connections_response
assert [item.connection_id for item in listed.data] == [connection.connection_id], listed

step("sync job")
job = sdk.jobs.create_job(
    request=models.JobCreateRequest(connection_id=connection.connection_id, job_type=models.JobTypeEnum.SYNC)
).job_response
deadline = time.time() + 60
while job.status not in (models.JobStatusEnum.SUCCEEDED, models.JobStatusEnum.FAILED):
    assert time.time() < deadline, job
    time.sleep(0.2)
    job = sdk.jobs.get_job(request=api.GetJobRequest(job_id=job.job_id)).job_response
# 500 users, faker's 100 products and the users' purchases.
assert job.status == models.JobStatusEnum.SUCCEEDED and job.rows_synced > 600, job
jobs = sdk.jobs.list_jobs(request=api.ListJobsRequest(connection_id=connection.connection_id)).jobs_response
assert [item.job_id for item in jobs.data] == [job.job_id], jobs

step("cancel a job")
job = sdk.jobs.create_job(
    request=models.JobCreateRequest(connection_id=connection.connection_id, job_type=models.JobTypeEnum.SYNC)
).job_response
cancelled = sdk.jobs.cancel_job(request=api.CancelJobRequest(job_id=job.job_id)).job_response
assert cancelled.status in (models.JobStatusEnum.CANCELLED, models.JobStatusEnum.SUCCEEDED), cancelled

step("delete a workspace")
spare = sdk.workspaces.create_workspace(request=models.WorkspaceCreateRequest(name="spare")).workspace_response
deleted = sdk.workspaces.delete_workspace(request=api.DeleteWorkspaceRequest(workspace_id=spare.workspace_id))
assert deleted.status_code == 204, deleted

print("sdk walkthrough: ok")
