-- songmix warehouse, migration 005: ground truth from a folder's truth.csv sits beside the
-- demo's, and its cells may be unknown.
--
-- Numbered into the gap the released schema left (it has 001-004 and 006-009): a warehouse
-- at 009 applies it after 009, a new one before 006. Both end alike, as 006-009 never touch
-- demo_truth (tests/warehouse/test_migrations.py compares the two).
ALTER TABLE demo_truth ALTER COLUMN group_id DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN group_name DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN tempo DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN "key" DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN "mode" DROP NOT NULL;
COMMENT ON TABLE demo_truth IS 'Ground truth per track: the demo catalog''s generating group and the tempo, key and mode its audio was rendered with, or a folder''s truth.csv (NULL where a cell was blank).';
