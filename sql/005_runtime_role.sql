-- Least privilege: the server can run as a role that may read and append to the log and
-- maintain the projections, and nothing more. `tracker migrate --runtime-role NAME` records the
-- role here; what it is granted is definitions/90_tracker_grant_runtime.sql.
CREATE TABLE runtime_role (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    role_name name    NOT NULL
);
