# ruff: noqa: E501  (tables of protocol sentences and test cases read best one entry per line)
"""The criteria file covers the whole protocol eligibility text.

PROTOCOL lists every sentence (or clause) of the protocol's eligibility section, in order, with the
criteria that encode it. Joined with spaces they must give back the protocol text exactly
(protocol_eligibility.txt, copied verbatim from the trial record NCT05807880 / seed/ALTER-HN005.txt), so no
sentence can be left out. A clause that is not a patient criterion says what handles it instead.
"""

from __future__ import annotations

from pathlib import Path

TEXT = (Path(__file__).parent / "protocol_eligibility.txt").read_text().strip()

PREAMBLE = "(preamble: no test of its own)"

PROTOCOL: list[tuple[str, list[str] | str]] = [
    ("Inclusion Criteria: Participants will be included only when they meet all inclusion criteria.", PREAMBLE),
    ("Between 18 to 65 years old.", ["age_min", "age_max"]),
    ("ECOG PS score 0-1 point.", ["ecog"]),
    ("Having at least one measurable lesion confirmed by the RECIST 1.1.", ["measurable_disease"]),
    ("Locoregionally advanced nasopharyngeal carcinoma patients, who have never received systematic treatment for "
     "recurrent or metastatic lesion, was found with recurrence or metastasis in at least 6 months after completing "
     "chemotherapy and radiotherapy of the primary lesion.",
     ["not_de_novo", "locoregionally_advanced", "no_prior_systemic_rm", "recurrence_interval",
      "prior_chemoradiotherapy"]),
    ("Never receive immune-checkpoint inhibitors (anti-PD-1 monoclonal antibody or anti PD-L1 monoclonal antibody, "
     "etc) treatment.", ["prior_ici_type"]),
    ("In radical treatment phase of locoregional nasopharyngeal carcinoma, patients received no more than 1 type of "
     "immune-checkpoint inhibitor (limited to CTLA-4/PD-1/PD-L1 monoclonal antibody, not including bi-specific "
     "antibody or penpulimab) can be included:", ["prior_ici_type", "prior_ici_count"]),
    ("i: If the patient received immune-checkpoint inhibitors (with or without other drugs) during induction "
     "therapy, the optimal treatment effect should be PR or better than PR.", ["prior_ici_induction_response"]),
    ("ii: If the patient received immune-checkpoint inhibitors (with or without other drugs) during radiotherapy, "
     "there should be no progression during treatment and within 6 months after treatment.",
     ["prior_ici_rt_no_progression"]),
    ("According to the researchers' judgement, the target lesion cannot benefit from radiotherapy.",
     ["rt_cannot_benefit"]),
    ("The major organs' function is normal, and meets following criteria 7 days before intervention:",
     "(lab window: the recruitment model's screening duration and lab validity; criteria below test the values)"),
    ("Blood routine should meet (No blood transfusion or blood product within the past 14 days, and no correction "
     "was used with G-CSF or other hematopoietic stimulating factors.):", ["no_transfusion_14d", "no_gcsf_14d"]),
    ("Hemoglobin (HB) ≥ 90g/L;", ["hb"]),
    ("White blood cell (WBC) ≥ 4*109/L;", ["wbc"]),
    ("Blood platelet (PLT): 100_109/L;", ["plt"]),
    ("Biochemistry examination should meet: Total bilirubin (TBIL) ≤ 1.5*upper limit of normal (ULN);", ["tbil"]),
    ("Alanine transaminase (ALT) and aspartate transaminase (AST) ≤ 2.5*ULN;", ["alt", "ast"]),
    ("Serum creatinine (Cr) ≤ 1.5×ULN and creatinine clearance (CCr) ≥ 60ml/min;", ["creatinine", "crcl"]),
    ("Coagulation function: INR and APTT ≤ 1.5*ULN;", ["inr", "aptt"]),
    ("Myocardial injury, heart failure three indexes examination, electrocardiogram results are normal;",
     ["troponin", "ntprobnp", "ecg"]),
    ("For patients with abnormalities in these three examinations, the researchers will assess whether to add "
     "Doppler ultrasound.", ["troponin", "ntprobnp", "ecg", "lvef"]),
    ("Thyroid gland function: TSH ≤ ULN; If not, including those whose FT3 and FT4 levels are normal, and "
     "excluding others.", ["thyroid_ft3", "thyroid_ft4"]),
    ("Fertile women must already used reliable contraceptive measures or have negative gestational test (serum) "
     "result within the 7 days before inclusion.", ["not_pregnant"]),
    ("And they are willing to take suitable contraceptive measures during the clinical trial and the 8 weeks after "
     "the last administration of intervention or have sterilized.", ["contraception_women"]),
    ("Men must take suitable contraceptive measures during the clinical trial and the 8 weeks after the last "
     "administration of intervention or have been surgically sterilized.", ["contraception_men"]),
    ("Patient has signed the informed consent and has good compliance.",
     ["investigator_judgement"]),  # consent itself is the recruitment model's consent step
    ("Exclusion Criteria: Patients who meet any of the following criteria should be excluded:", PREAMBLE),
    ("Disease progression within 6 months after the standard therapy of locoregional advanced nasopharyngeal "
     "carcinoma;", ["early_progression"]),
    ("Patients who cannot accept MR examination for metal implant or claustrophobia;", ["mri_contraindication"]),
    ("Patients who need systemically using glucocorticoid (> 10mg prednisone per day) or other immunosuppressive "
     "drugs treatment in 14 days before intervention or during intervention.", ["systemic_steroids"]),
    ("If the patient doesn't have active autoimmune disease, it is allowed to use invasive or topical "
     "corticosteroid and adrenocorticotropic hormone (ACTH) that is equivalent to > 10mg/day prednisone, and ACTH "
     "replacement therapy that is equivalent to ≤ 10mg/ day prednisone therapeutic dose.", ["systemic_steroids"]),
    ("Patient who has recurrent lesion that is suitable for operation or second-course radiotherapy or, based on "
     "the judgement of the doctor in charge, can profit from the radiotherapy for the target lesion.",
     ["locally_salvageable", "rt_cannot_benefit"]),
    ("Patient has active immune or autoimmune disease history, or known allograft history, or allogeneic "
     "hematopoietic stem cell transplantation history, excluding type 1 diabetes, hypothyroidism that need hormone "
     "replacement therapy and dermatologic diseases that don't need systemic treatment (e.g. leucoderma, psoriasis "
     "and alopecia.).", ["autoimmune", "transplant"]),
    ("Patients who had active or uncontrolled severe infection (≥ CTCAE level 3 infection) within the 4 weeks "
     "before inclusion;", ["severe_infection"]),
    ("Patient who had active tuberculosis history in the past 1 year, with or without treatment.", ["active_tb"]),
    ("Apart from those with a proven history of regular antituberculosis therapy, patients with > 1-year active "
     "pulmonary tuberculosis history should be excluded.", ["active_tb"]),
    ("Patients with hypertension history, and their blood pressure was not well-controlled (systolic pressure ≥ "
     "150 mmHg or diastolic pressure ≥ 90 mmHg) after 1 kind of drug treatment.",
     ["uncontrolled_sbp", "uncontrolled_dbp"]),
    ("Having significant clinical ischemia symptom or specific ischemia tendency, especially to exclude "
     "locoregional recurrent cases with high risk of ischemia;", ["ischaemia_bleeding_risk"]),
    ("Urine routine examination revealed urine protein ≥ ++, and is proven that 24-h urinary protein volume ≥ "
     "1.0g;", ["proteinuria"]),
    ("Patients who had ≥ level I myocardial ischemia, myocardial infarction, arrythmia (including QTc ≥ 480ms) or ≥ "
     "level 2 congestive heart failure (New York Heart Association, NYHA) during the 6 months before inclusion.",
     ["cardiac_ischaemia_mi", "arrhythmia", "qtc", "heart_failure"]),
    ("If the patient need Doppler ultrasound examination (the 4th of inclusion criteria 5), the abnormal result is "
     "when left ventricular ejection fraction (LVEF) < lower limit of normal (60%);", ["lvef"]),
    ("Patient who has been diagnosed with other malignant carcinoma, excluding cured non-melanoma skin cancer, "
     "carcinoma in situ of cervix or papillary thyroid carcinoma;", ["other_malignancy"]),
    ("Existed meningeal metastasis or central nerve system metastasis;", ["cns_metastasis"]),
    ("HIV positive, TP positive, liver cirrhosis, decompensated liver disease, active hepatitis (active hepatitis "
     "that were not well-controlled after treatment (Hepatitis B: HBsAg positive and HBV DNA ≥ 1*104 copies/ml; "
     "Hepatitis C: HCV RNA positive and abnormal hepatic function; the co-infection of hepatitis B and hepatitis "
     "C), and need to receive antiviral treatment;",
     ["hiv", "syphilis", "cirrhosis", "hepatitis_b", "hepatitis_c", "hbv_hcv_coinfection"]),
    ("Patients who have participated in other anti-tumor drug-related clinical trial in the 4 weeks before "
     "inclusion;", ["other_trial"]),
    ("Patients who have received attenuated live vaccine or AK-105 treatment in the 30 days before inclusion;",
     ["live_vaccine", "ak105_recent"]),
    ("Patients who had severe hypersensitivity history to other monoclonal antibody;", ["mab_hypersensitivity"]),
    ("Patients who had great difficulty for oral drugs, e.g. cannot swallow, chronic diarrhea and bowel "
     "congestion, etc.", ["oral_intake"]),
    ("Patients with mental drug abuse history and cannot withdrawal or mental disorder;", ["psychiatric_substance"]),
    ("There are conditions that, in the investigator's judgment, seriously endanger patient safety, may confuse "
     "the study results, or concomitant diseases or any other situations that affect the patient's completion of "
     "the study.", ["investigator_judgement"]),
]


def test_sentences_are_the_whole_protocol_text():
    assert " ".join(s for s, _ in PROTOCOL) == TEXT


def test_every_sentence_is_encoded_and_every_criterion_used(cfg):
    ids = {c.id for c in cfg.criterion}
    named = {i for _, enc in PROTOCOL if isinstance(enc, list) for i in enc}
    assert named - ids == set(), "sentences name criteria that do not exist"
    assert ids - named == set(), "criteria that encode no protocol sentence"
    for sentence, enc in PROTOCOL:
        assert enc, f"sentence with no encoding: {sentence}"


def test_protocol_text_of_each_criterion_is_the_protocols_own_words(cfg):
    """Each criterion quotes the protocol (parts joined by ' … ' may come from different sentences)."""
    flat = " ".join(TEXT.split())
    for c in cfg.criterion:
        for part in c.protocol_text.split(" … "):
            assert " ".join(part.split()) in flat, f"{c.id}: not protocol wording: {part!r}"


def test_inclusion_and_exclusion_kinds_follow_the_protocol_sections(cfg):
    cut = next(i for i, (s, _) in enumerate(PROTOCOL) if s.startswith("Exclusion Criteria"))
    inclusion = {i for _, enc in PROTOCOL[:cut] if isinstance(enc, list) for i in enc}
    exclusion = {i for _, enc in PROTOCOL[cut:] if isinstance(enc, list) for i in enc}
    for c in cfg.criterion:
        # a criterion encoding sentences of both sections (e.g. rt_cannot_benefit, lvef) may be either kind
        if c.id in inclusion and c.id not in exclusion:
            assert c.kind == "inclusion", c.id
        if c.id in exclusion and c.id not in inclusion:
            assert c.kind == "exclusion", c.id
