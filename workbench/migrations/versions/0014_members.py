"""project members: who may see, label, review and export each project

Existing databases keep working: every existing annotator and reviewer becomes a member of every
existing project, with their user role. Projects created afterwards start with no members.

Revision ID: 0014_members
Revises: 0013_project_settings
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes


revision = '0014_members'
down_revision = '0013_project_settings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('project_member',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('added_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.CheckConstraint("role IN ('annotator', 'reviewer')", name='ck_project_member_role'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('project_id', 'user_id')
    )
    op.create_index('ix_project_member_user', 'project_member', ['user_id', 'project_id'], unique=False)
    op.execute(
        "INSERT INTO project_member (project_id, user_id, role, added_at) "
        "SELECT p.id, u.id, u.role, CURRENT_TIMESTAMP FROM project p CROSS JOIN app_user u "
        "WHERE u.role IN ('annotator', 'reviewer')"
    )


def downgrade() -> None:
    op.drop_index('ix_project_member_user', table_name='project_member')
    op.drop_table('project_member')
