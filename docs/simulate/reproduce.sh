#!/usr/bin/env bash
# Reproduce every figure in docs/simulate/README.md (run from the project root; needs ../shared/datasets).
set -euo pipefail
D=../shared/datasets
OUT=docs/simulate

# 1. SMS Spam Collection: five strategies, five seeds, 500 labels, blind double-labeling (overlap 2).
workbench simulate $D/sms_spam_collection/SMSSpamCollection --format tsv --no-header --columns label,text \
  --label-col label --text-col text --name sms_spam_collection \
  --strategies random,margin,entropy,least_confidence,qbc_vote --seeds 5 --budget 500 --batch-size 25 \
  --out $OUT/sms_report.json --plot $OUT/sms_curves.png --markdown

# 2. SMS, margin vs random until random too reaches 99% of full-pool accuracy (3,000 labels; bigger
#    batches later), same double-labeling.
workbench simulate $D/sms_spam_collection/SMSSpamCollection --format tsv --no-header --columns label,text \
  --label-col label --text-col text --name sms_spam_collection \
  --strategies margin,random --seeds 5 --budget 3000 --batch-size 25,500:100,1000:250 \
  --out $OUT/sms_long_report.json --plot $OUT/sms_long_curves.png --markdown

# 3. RTE with the real AMT workers' answers (Snow et al. 2008): overlap 1, 2 and 3, adjudicated.
RTE=($D/crowd_snow2008_rte_temp/rte1.tsv --id-col id --label-col value --text-col text,hypothesis
  --label-map '{"TRUE": "1", "FALSE": "0"}' --crowd $D/crowd_snow2008_rte_temp/rte.standardized.tsv
  --crowd-item-col orig_id --crowd-worker-col '!amt_worker_ids' --crowd-label-col response
  --name rte_crowd --strategies margin --seeds 5 --budget all --batch-size 80)
workbench simulate "${RTE[@]}" --overlap 1 --out $OUT/rte_overlap1.json
workbench simulate "${RTE[@]}" --overlap 2 --adjudicator gold --out $OUT/rte_overlap2_gold.json --plot $OUT/rte_overlap2_gold.png
workbench simulate "${RTE[@]}" --overlap 2 --adjudicator majority --out $OUT/rte_overlap2_majority.json
workbench simulate "${RTE[@]}" --overlap 3 --adjudicator majority --out $OUT/rte_overlap3_majority.json

# 4. The default (sentence embeddings + margin_diversity) against margin and random on every labeled
#    dataset, every run until 99% of full-pool accuracy (prints each command it runs; embeddings are
#    cached by content hash under the system temp folder).
python -m workbench.bench.simulate_all --only sms_spam_collection --overlap 2 --seeds 3 --out $OUT/sms_default.json
python -m workbench.bench.simulate_all --only adult_census_income,crowd_snow2008_rte_temp,weather_sentiment_crowdflower \
  --overlap 1 --seeds 3 --out $OUT/others_default.json
workbench bench featurize --rows 3000 --json $OUT/featurize.json
