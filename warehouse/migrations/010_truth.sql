-- Ground truth from a folder's truth.csv sits beside the demo's: its cells may be unknown.
ALTER TABLE demo_truth ALTER COLUMN group_id DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN group_name DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN tempo DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN "key" DROP NOT NULL;
ALTER TABLE demo_truth ALTER COLUMN "mode" DROP NOT NULL;
COMMENT ON TABLE demo_truth IS 'Ground truth per track: the demo catalog''s generating group and the tempo, key and mode its audio was rendered with, or a folder''s truth.csv (NULL where a cell was blank).';
