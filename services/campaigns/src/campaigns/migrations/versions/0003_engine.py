"""The win-back engine: campaigns, the customers' copy, enrolments (with their timers), messages, pacing.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # asyncpg prepares each statement, so they go one at a time.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


_SCHEMA = """
        -- A workspace's own campaigns, and its switches for the ready-made ones (definition NULL:
        -- the built-in definition, so product updates reach workspaces that never edited it).
        CREATE TABLE campaigns.campaign (
            workspace_id text NOT NULL,
            campaign_id text NOT NULL,
            definition jsonb,
            enabled boolean NOT NULL DEFAULT true,
            version integer NOT NULL DEFAULT 1,
            updated_at timestamptz NOT NULL,
            updated_by text,
            CONSTRAINT pk_campaign PRIMARY KEY (workspace_id, campaign_id)
        );

        -- What campaigns knows of a customer: the latest snapshot from customer-changes, scoring's
        -- win-back decision, and an unsubscribe made through one of its links.
        CREATE TABLE campaigns.customer (
            workspace_id text NOT NULL,
            customer_id text NOT NULL,
            snapshot jsonb,
            snapshot_at timestamptz,
            decision jsonb,
            decision_at timestamptz,
            consent jsonb NOT NULL DEFAULT '{}',
            unsubscribed_at timestamptz,
            CONSTRAINT pk_customer PRIMARY KEY (workspace_id, customer_id)
        );

        -- An enrolment is its own timer: due_at is when the scheduler next calls the machine.
        CREATE TABLE campaigns.enrolment (
            enrolment_id text NOT NULL,
            workspace_id text NOT NULL,
            campaign_id text NOT NULL,
            customer_id text NOT NULL,
            cycle integer NOT NULL,
            control boolean NOT NULL,
            priority integer NOT NULL DEFAULT 0,
            enrolled_at timestamptz NOT NULL,
            step integer NOT NULL,
            due_at timestamptz,
            state text NOT NULL,
            responded boolean NOT NULL DEFAULT false,
            outcome text,
            ended_at timestamptz,
            credit jsonb,
            path jsonb NOT NULL,
            CONSTRAINT pk_enrolment PRIMARY KEY (enrolment_id)
        );
        CREATE INDEX ix_enrolment_due ON campaigns.enrolment (due_at) WHERE state = 'active';
        CREATE INDEX ix_enrolment_customer ON campaigns.enrolment (workspace_id, customer_id);
        CREATE INDEX ix_enrolment_active ON campaigns.enrolment (workspace_id, customer_id) WHERE state = 'active';
        CREATE INDEX ix_enrolment_campaign ON campaigns.enrolment (workspace_id, campaign_id, cycle);

        -- One row per (enrolment, step) that is to reach the customer. State: queued → sending →
        -- sent | retrying | failed | in_doubt | withheld (stopped before sending).
        CREATE TABLE campaigns.message (
            message_id text NOT NULL,
            workspace_id text NOT NULL,
            customer_id text NOT NULL,
            enrolment_id text NOT NULL,
            campaign_id text NOT NULL,
            step integer NOT NULL,
            variant text NOT NULL,
            channel text NOT NULL,
            template_id text NOT NULL,
            coupon text,
            offer jsonb NOT NULL,
            call_to_action text NOT NULL,
            recipient text,
            subject text,
            body text,
            html text,
            state text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL,
            sending_at timestamptz,
            sent_at timestamptz,
            provider_id text,
            error text,
            delivered_at timestamptz,
            opened_at timestamptz,
            clicked_at timestamptz,
            replied_at timestamptz,
            bounced_at timestamptz,
            CONSTRAINT pk_message PRIMARY KEY (message_id)
        );
        CREATE INDEX ix_message_ready ON campaigns.message (next_attempt_at) WHERE state IN ('queued', 'retrying');
        CREATE INDEX ix_message_sending ON campaigns.message (sending_at) WHERE state = 'sending';
        CREATE INDEX ix_message_customer ON campaigns.message (workspace_id, customer_id, created_at);
        CREATE INDEX ix_message_day ON campaigns.message (workspace_id, created_at);
        CREATE INDEX ix_message_enrolment ON campaigns.message (enrolment_id);
        CREATE UNIQUE INDEX ix_message_coupon ON campaigns.message (workspace_id, coupon) WHERE coupon IS NOT NULL;

        -- A workspace's own templates (the ready-made ones live in code).
        CREATE TABLE campaigns.template (
            workspace_id text NOT NULL,
            template_id text NOT NULL,
            subject text NOT NULL,
            body text NOT NULL,
            html text,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pk_template PRIMARY KEY (workspace_id, template_id)
        );

        CREATE TABLE campaigns.pacing (
            workspace_id text NOT NULL,
            rules jsonb NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pk_pacing PRIMARY KEY (workspace_id)
        );
"""


def downgrade() -> None:
    for table in ("pacing", "template", "message", "enrolment", "customer", "campaign"):
        op.execute(f"DROP TABLE campaigns.{table}")
