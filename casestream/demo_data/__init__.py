"""Static demo catalogue: queues, reference records and case definitions, as command payloads.

Everything here is plain data; `casestream.demo` turns it into commands. Record keys double as the values
case data refers to (a complaint's `product`, an onboarding's `country`).
"""

from __future__ import annotations

from typing import Any

QUEUES: list[dict[str, str]] = [
    {"key": "intake", "name": "Intake", "description": "New work waiting to be triaged."},
    {"key": "claims-team", "name": "Claims team", "description": "Claims handlers: assessment and settlement."},
    {"key": "fraud", "name": "Fraud", "description": "Special investigations: suspicious claims and applicants."},
    {"key": "complaints", "name": "Complaints", "description": "Customer relations: complaint handling."},
    {"key": "onboarding", "name": "Onboarding", "description": "Business onboarding and KYC."},
    {"key": "escalations", "name": "Escalations", "description": "Supervisor attention needed."},
]

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "line", "active"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 120},
        "line": {"type": "string", "enum": ["home", "motor", "travel", "business", "banking"]},
        "active": {"type": "boolean"},
        "launched": {"type": "string", "format": "date"},
        "monthly_premium_from": {"type": "number", "minimum": 0},
    },
}

COUNTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "iso2", "region", "high_risk"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "iso2": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "region": {"type": "string", "enum": ["EU", "EEA", "UK", "North America", "APAC", "Other"]},
        "high_risk": {"type": "boolean"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
}

RECORD_TYPES: list[dict[str, Any]] = [
    {"key": "product", "name": "Product", "schema": PRODUCT_SCHEMA},
    {"key": "country", "name": "Country", "schema": COUNTRY_SCHEMA},
]

PRODUCTS: dict[str, dict[str, Any]] = {
    "home-plus": {"name": "Home Plus", "line": "home", "active": True, "launched": "2019-03-01",
                  "monthly_premium_from": 18.5},
    "home-basic": {"name": "Home Basic", "line": "home", "active": True, "launched": "2016-01-15",
                   "monthly_premium_from": 9.9},
    "motor-comprehensive": {"name": "Motor Comprehensive", "line": "motor", "active": True,
                            "launched": "2018-06-01", "monthly_premium_from": 42.0},
    "motor-third-party": {"name": "Motor Third Party", "line": "motor", "active": True, "launched": "2015-09-01",
                          "monthly_premium_from": 21.0},
    "travel-annual": {"name": "Annual Travel", "line": "travel", "active": True, "launched": "2020-02-01",
                      "monthly_premium_from": 6.5},
    "business-liability": {"name": "Business Liability", "line": "business", "active": True,
                           "launched": "2017-11-01", "monthly_premium_from": 55.0},
    "current-account": {"name": "Current Account", "line": "banking", "active": True, "launched": "2012-05-01"},
    "savings-flex": {"name": "Flex Savings", "line": "banking", "active": True, "launched": "2021-04-12"},
    "travel-single": {"name": "Single Trip Travel", "line": "travel", "active": False, "launched": "2014-03-01"},
}
# products saved, then removed (shows RecordRemoved in history); never referred to by cases
RETIRED_PRODUCTS = {"travel-single": "Replaced by Annual Travel in 2023."}

COUNTRIES: dict[str, dict[str, Any]] = {
    "nl": {"name": "Netherlands", "iso2": "NL", "region": "EU", "high_risk": False, "currency": "EUR"},
    "be": {"name": "Belgium", "iso2": "BE", "region": "EU", "high_risk": False, "currency": "EUR"},
    "de": {"name": "Germany", "iso2": "DE", "region": "EU", "high_risk": False, "currency": "EUR"},
    "fr": {"name": "France", "iso2": "FR", "region": "EU", "high_risk": False, "currency": "EUR"},
    "es": {"name": "Spain", "iso2": "ES", "region": "EU", "high_risk": False, "currency": "EUR"},
    "ie": {"name": "Ireland", "iso2": "IE", "region": "EU", "high_risk": False, "currency": "EUR"},
    "no": {"name": "Norway", "iso2": "NO", "region": "EEA", "high_risk": False, "currency": "NOK"},
    "gb": {"name": "United Kingdom", "iso2": "GB", "region": "UK", "high_risk": False, "currency": "GBP"},
    "us": {"name": "United States", "iso2": "US", "region": "North America", "high_risk": False,
           "currency": "USD"},
    "sg": {"name": "Singapore", "iso2": "SG", "region": "APAC", "high_risk": False, "currency": "SGD"},
    "ae": {"name": "United Arab Emirates", "iso2": "AE", "region": "Other", "high_risk": True, "currency": "AED"},
    "pa": {"name": "Panama", "iso2": "PA", "region": "Other", "high_risk": True, "currency": "PAB"},
}

RECORDS: dict[str, dict[str, dict[str, Any]]] = {"product": PRODUCTS, "country": COUNTRIES}

INSURANCE_PRODUCTS = ["home-plus", "home-basic", "motor-comprehensive", "motor-third-party", "travel-annual",
                      "business-liability"]
COMPLAINT_PRODUCTS = [*INSURANCE_PRODUCTS, "current-account", "savings-flex"]
ONBOARDING_COUNTRIES = ["nl", "nl", "nl", "be", "de", "de", "fr", "es", "ie", "no", "gb", "gb", "us", "sg", "ae",
                        "pa"]

# ---------------------------------------------------------------------------------------------------------
# Case definitions. Stages are listed in their main order; transitions to an earlier stage are back-edges.

CLAIM_CATEGORIES = ["water-damage", "fire", "theft", "storm", "vehicle-collision", "glass", "liability"]

CLAIM: dict[str, Any] = {
    "key": "claim",
    "name": "Insurance claim",
    "number_prefix": "CLM",
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Insurance claim",
        "type": "object",
        "required": ["policy_number", "claimant_name", "incident_date", "amount", "currency", "category"],
        "additionalProperties": False,
        "properties": {
            "policy_number": {"type": "string", "title": "Policy number", "pattern": "^POL-[0-9]{7}$"},
            "claimant_name": {"type": "string", "title": "Claimant", "minLength": 2, "maxLength": 120},
            "claimant_email": {"type": "string", "title": "Claimant e-mail", "format": "email"},
            "product": {"type": "string", "title": "Product (record key)", "enum": INSURANCE_PRODUCTS},
            "incident_date": {"type": "string", "title": "Incident date", "format": "date"},
            "reported_date": {"type": "string", "title": "Reported on", "format": "date"},
            "amount": {"type": "number", "title": "Claimed amount", "minimum": 0, "maximum": 5_000_000},
            "currency": {"type": "string", "title": "Currency", "enum": ["EUR", "GBP", "USD"]},
            "category": {"type": "string", "title": "Category", "enum": CLAIM_CATEGORIES},
            "description": {"type": "string", "title": "What happened", "maxLength": 4000},
            "police_report": {"type": "string", "title": "Police report number", "pattern": "^PR-[0-9]{4}-[0-9]{5}$"},
            "fraud_score": {"type": "integer", "title": "Fraud score", "minimum": 0, "maximum": 100},
            "approved_amount": {"type": "number", "title": "Approved amount", "minimum": 0},
            "adjuster_visit": {"type": "string", "title": "Adjuster visit", "format": "date"},
        },
    },
    "ui_schema": {
        "ui:order": ["policy_number", "claimant_name", "claimant_email", "product", "category", "incident_date",
                     "reported_date", "amount", "currency", "description", "police_report", "adjuster_visit",
                     "fraud_score", "approved_amount"],
        "policy_number": {"ui:placeholder": "POL-1234567"},
        "claimant_email": {"ui:widget": "email"},
        "product": {"ui:widget": "record", "ui:options": {"record_type": "product"}},
        "incident_date": {"ui:widget": "date"},
        "reported_date": {"ui:widget": "date"},
        "adjuster_visit": {"ui:widget": "date"},
        "amount": {"ui:options": {"currency_field": "currency"}},
        "approved_amount": {"ui:options": {"currency_field": "currency"}, "ui:help": "Set by the assessor."},
        "description": {"ui:widget": "textarea", "ui:options": {"rows": 5}},
        "fraud_score": {"ui:widget": "range", "ui:help": "0 = clean, 100 = almost certainly fraudulent."},
    },
    "stages": [
        {"key": "intake", "name": "Intake", "transitions": ["triage"]},
        {"key": "triage", "name": "Triage", "transitions": ["assessment", "fraud-review", "intake"]},
        {"key": "assessment", "name": "Assessment", "transitions": ["approval", "fraud-review", "triage"]},
        {"key": "fraud-review", "name": "Fraud review", "transitions": ["approval", "assessment"]},
        {"key": "approval", "name": "Approval", "transitions": ["payment", "assessment"]},
        {"key": "payment", "name": "Payment", "transitions": ["settled", "approval"]},
        {"key": "settled", "name": "Settled", "transitions": []},
    ],
    "statuses": ["approved", "partially-approved", "rejected", "withdrawn", "duplicate"],
    "queues": ["intake", "claims-team", "fraud", "escalations"],
    "card_fields": ["policy_number", "category", "amount", "currency"],
}

COMPLAINT_SEVERITIES = ["low", "medium", "high", "critical"]
COMPLAINT_CHANNELS = ["email", "phone", "web-form", "letter", "social-media", "branch"]

COMPLAINT: dict[str, Any] = {
    "key": "complaint",
    "name": "Customer complaint",
    "number_prefix": "CMP",
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Customer complaint",
        "type": "object",
        "required": ["customer_name", "channel", "severity", "product", "received_date"],
        "additionalProperties": False,
        "properties": {
            "customer_name": {"type": "string", "title": "Customer", "minLength": 2, "maxLength": 120},
            "customer_email": {"type": "string", "title": "E-mail", "format": "email"},
            "customer_number": {"type": "string", "title": "Customer number", "pattern": "^C[0-9]{8}$"},
            "channel": {"type": "string", "title": "Channel", "enum": COMPLAINT_CHANNELS},
            "severity": {"type": "string", "title": "Severity", "enum": COMPLAINT_SEVERITIES},
            "product": {"type": "string", "title": "Product (record key)", "enum": COMPLAINT_PRODUCTS},
            "received_date": {"type": "string", "title": "Received on", "format": "date"},
            "response_due": {"type": "string", "title": "Response due", "format": "date"},
            "summary": {"type": "string", "title": "Summary", "maxLength": 4000},
            "root_cause": {"type": "string", "title": "Root cause",
                           "enum": ["process", "communication", "system-error", "staff-conduct", "pricing",
                                    "policy-terms", "third-party"]},
            "compensation": {"type": "number", "title": "Compensation offered", "minimum": 0, "maximum": 10_000},
            "regulator_notified": {"type": "boolean", "title": "Regulator notified"},
        },
    },
    "ui_schema": {
        "ui:order": ["customer_name", "customer_number", "customer_email", "channel", "severity", "product",
                     "received_date", "response_due", "summary", "root_cause", "compensation",
                     "regulator_notified"],
        "customer_email": {"ui:widget": "email"},
        "channel": {"ui:widget": "radio"},
        "severity": {"ui:widget": "select", "ui:options": {"colors": {"low": "grey", "medium": "blue",
                                                                      "high": "orange", "critical": "red"}}},
        "product": {"ui:widget": "record", "ui:options": {"record_type": "product"}},
        "received_date": {"ui:widget": "date"},
        "response_due": {"ui:widget": "date", "ui:help": "Eight weeks after receipt at the latest."},
        "summary": {"ui:widget": "textarea", "ui:options": {"rows": 4}},
        "compensation": {"ui:options": {"currency": "EUR"}},
    },
    "stages": [
        {"key": "received", "name": "Received", "transitions": ["investigating"]},
        {"key": "investigating", "name": "Investigating",
         "transitions": ["awaiting-customer", "escalated", "response-drafted"]},
        {"key": "awaiting-customer", "name": "Awaiting customer", "transitions": ["investigating"]},
        {"key": "escalated", "name": "Escalated", "transitions": ["response-drafted", "investigating"]},
        {"key": "response-drafted", "name": "Response drafted", "transitions": ["responded", "investigating"]},
        {"key": "responded", "name": "Responded", "transitions": ["investigating"]},
    ],
    "statuses": ["upheld", "partially-upheld", "not-upheld", "withdrawn"],
    "queues": ["intake", "complaints", "escalations"],
    "card_fields": ["severity", "channel", "product"],
}

# Published after the first COMPLAINT_V2_AFTER cases, so older complaints stay pinned to version 1.
COMPLAINT_V2_AFTER = 80
COMPLAINT_V2: dict[str, Any] = {
    **COMPLAINT,
    "schema": {
        **COMPLAINT["schema"],
        "properties": {
            **COMPLAINT["schema"]["properties"],
            "preferred_contact": {"type": "string", "title": "Preferred contact", "enum": ["email", "phone", "letter"]},
        },
    },
    "ui_schema": {**COMPLAINT["ui_schema"], "ui:order": [*COMPLAINT["ui_schema"]["ui:order"], "preferred_contact"],
                  "preferred_contact": {"ui:widget": "radio"}},
    "card_fields": ["severity", "channel", "product", "preferred_contact"],
}

ONBOARDING: dict[str, Any] = {
    "key": "onboarding",
    "name": "Business customer onboarding",
    "number_prefix": "ONB",
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Business customer onboarding",
        "type": "object",
        "required": ["company_name", "registration_number", "country", "risk_level", "contact_email"],
        "additionalProperties": False,
        "properties": {
            "company_name": {"type": "string", "title": "Company name", "minLength": 2, "maxLength": 200},
            "registration_number": {"type": "string", "title": "Registration number", "minLength": 4,
                                    "maxLength": 20},
            "country": {"type": "string", "title": "Country (record key)", "enum": sorted(COUNTRIES)},
            "industry": {"type": "string", "title": "Industry",
                         "enum": ["retail", "logistics", "software", "construction", "hospitality", "healthcare",
                                  "manufacturing", "financial-services", "agriculture"]},
            "risk_level": {"type": "string", "title": "Risk level", "enum": ["low", "medium", "high"]},
            "contact_name": {"type": "string", "title": "Contact person"},
            "contact_email": {"type": "string", "title": "Contact e-mail", "format": "email"},
            "website": {"type": "string", "title": "Website", "format": "uri"},
            "incorporation_date": {"type": "string", "title": "Incorporated on", "format": "date"},
            "employees": {"type": "integer", "title": "Employees", "minimum": 1},
            "expected_monthly_volume": {"type": "number", "title": "Expected monthly volume (EUR)", "minimum": 0},
            "ubo_verified": {"type": "boolean", "title": "Beneficial owners verified"},
            "documents_received": {"type": "array", "title": "Documents received", "uniqueItems": True,
                                   "items": {"type": "string",
                                             "enum": ["chamber-extract", "ubo-register", "id-director",
                                                      "bank-statement", "articles"]}},
        },
    },
    "ui_schema": {
        "ui:order": ["company_name", "registration_number", "country", "industry", "risk_level", "contact_name",
                     "contact_email", "website", "incorporation_date", "employees", "expected_monthly_volume",
                     "documents_received", "ubo_verified"],
        "country": {"ui:widget": "record", "ui:options": {"record_type": "country"}},
        "risk_level": {"ui:widget": "radio", "ui:help": "High risk requires enhanced due diligence."},
        "contact_email": {"ui:widget": "email"},
        "website": {"ui:widget": "uri", "ui:placeholder": "https://"},
        "incorporation_date": {"ui:widget": "date"},
        "documents_received": {"ui:widget": "checkboxes"},
    },
    "stages": [
        {"key": "application", "name": "Application", "transitions": ["document-check"]},
        {"key": "document-check", "name": "Document check", "transitions": ["kyc", "application"]},
        {"key": "kyc", "name": "KYC", "transitions": ["risk-review", "document-check"]},
        {"key": "risk-review", "name": "Risk review", "transitions": ["approval", "kyc"]},
        {"key": "approval", "name": "Approval", "transitions": ["activation", "risk-review"]},
        {"key": "activation", "name": "Activation", "transitions": []},
    ],
    "statuses": ["activated", "rejected", "abandoned"],
    "queues": ["intake", "onboarding", "fraud", "escalations"],
    "card_fields": ["company_name", "country", "risk_level"],
}

DEFINITIONS: list[dict[str, Any]] = [CLAIM, COMPLAINT, ONBOARDING]

# ---------------------------------------------------------------------------------------------------------
# Name pools for titles and data.

FIRST_NAMES = ["Anna", "Bram", "Chloé", "Daan", "Emma", "Fatima", "Gijs", "Hannah", "Ibrahim", "Julia", "Koen",
               "Lotte", "Mohammed", "Noor", "Oliver", "Priya", "Quinten", "Rosa", "Sem", "Tess", "Umar", "Vera",
               "Willem", "Yara", "Zoë", "Lucas", "Sophie", "Milan", "Eva", "Thomas"]
LAST_NAMES = ["Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder",
              "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit",
              "Dijkstra", "Smits", "O'Brien", "Müller", "García", "Dubois", "Kowalski", "Nguyen", "Okafor",
              "Y\u0131lmaz", "Rossi", "Andersen"]
COMPANY_STEMS = ["Noordzee", "Tulip", "Windmill", "Harbour", "Polder", "Canal", "Lighthouse", "Dune", "Maple",
                 "Orchid", "Beacon", "Granite", "Riverside", "Northwind", "Bluebird", "Kestrel", "Juniper",
                 "Meridian", "Copperleaf", "Silverline"]
COMPANY_KINDS = {"retail": "Retail", "logistics": "Logistics", "software": "Software", "construction": "Bouw",
                 "hospitality": "Hospitality", "healthcare": "Care", "manufacturing": "Works",
                 "financial-services": "Capital", "agriculture": "Farms"}
COMPANY_SUFFIX = {"nl": "B.V.", "be": "BV", "de": "GmbH", "fr": "SAS", "es": "S.L.", "ie": "Ltd", "no": "AS",
                  "gb": "Ltd", "us": "Inc.", "sg": "Pte. Ltd.", "ae": "FZ-LLC", "pa": "S.A."}

CLAIM_TITLES = {
    "water-damage": ["Water damage in kitchen", "Burst pipe in bathroom", "Leaking roof after heavy rain",
                     "Washing machine flooded basement"],
    "fire": ["Kitchen fire", "Chimney fire damage", "Electrical fire in garage"],
    "theft": ["Bicycle stolen from shed", "Burglary — laptop and jewellery", "Phone stolen on holiday",
              "Break-in at office premises"],
    "storm": ["Storm damage to roof tiles", "Fallen tree on garden fence", "Hail damage to conservatory"],
    "vehicle-collision": ["Rear-end collision on A10", "Parking damage at supermarket", "Collision with deer",
                          "Side impact at roundabout"],
    "glass": ["Cracked windscreen", "Broken patio door", "Shattered shop window"],
    "liability": ["Customer slipped in shop", "Damage to neighbour's car", "Delivery van hit gate"],
}
CLAIM_CATEGORY_PRODUCTS = {
    "water-damage": ["home-plus", "home-basic"], "fire": ["home-plus", "home-basic", "business-liability"],
    "theft": ["home-plus", "travel-annual", "business-liability"], "storm": ["home-plus", "home-basic"],
    "vehicle-collision": ["motor-comprehensive", "motor-third-party"], "glass": ["motor-comprehensive", "home-plus"],
    "liability": ["business-liability", "motor-third-party"],
}
CLAIM_AMOUNTS = {"water-damage": (400, 18_000), "fire": (1_500, 85_000), "theft": (150, 9_000),
                 "storm": (300, 25_000), "vehicle-collision": (600, 22_000), "glass": (120, 2_400),
                 "liability": (500, 40_000)}

COMPLAINT_TITLES = {
    "home-plus": ["Claim payout took too long", "Premium increase not explained"],
    "home-basic": ["Cover refused for storm damage", "Renewal letter never arrived"],
    "motor-comprehensive": ["Courtesy car not provided", "Repair shop did poor work"],
    "motor-third-party": ["No-claims discount lost", "Policy cancelled without notice"],
    "travel-annual": ["Medical expenses claim rejected", "Hold time over an hour"],
    "business-liability": ["Certificate sent to wrong address", "Broker gave misleading advice"],
    "current-account": ["Card blocked abroad", "Double charge on statement", "App login keeps failing"],
    "savings-flex": ["Interest rate changed without notice", "Withdrawal delayed by a week"],
}

ONBOARDING_TITLES = ["Onboarding", "New business account", "Merchant onboarding", "Corporate account application"]

# Comment pools: generic per definition; `{name}`, `{number}` and friends are filled from the case.
COMMENTS: dict[str, list[str]] = {
    "claim": [
        "Called {first} to confirm the incident details; photos will follow by e-mail.",
        "Policy {policy} was active on the incident date and the premium is paid up.",
        "Received the repair quote: {currency} {amount}. Looks in line with similar claims.",
        "Asked the claimant for the original purchase receipts.",
        "Adjuster visit planned; {first} will be home in the morning.",
        "Previous claim on this policy 14 months ago, unrelated.",
        "Contractor's invoice seems high for the described damage — requesting a second quote.",
        "Photos received and attached to the file.",
        "Claimant asks when the payment can be expected.",
    ],
    "complaint": [
        "Called {first} back; they were understanding but want a written answer.",
        "Checked the call recordings from the date in question.",
        "The customer was on hold for 47 minutes according to the telephony log.",
        "Looked at the account history: the fee was charged twice, the second one by mistake.",
        "Sent the acknowledgement letter; response due within eight weeks.",
        "Product team confirms the terms changed on 1 March and were communicated by e-mail only.",
        "Customer sent additional screenshots of the error message.",
        "Drafted a response offering an apology and a goodwill gesture.",
    ],
    "onboarding": [
        "Chamber of Commerce extract received for {company}.",
        "Website and registered address match; no adverse media found.",
        "UBO register shows two beneficial owners, both verified with ID.",
        "Waiting for a recent bank statement from {contact}.",
        "Expected volume looks high for a company of this size — asked for a business plan.",
        "Sanctions screening came back clean.",
        "Director's ID document expired last month; requested a valid copy.",
        "Spoke to {contact}: they plan to start trading next month.",
    ],
}
REPLIES = [
    "Thanks, noted.",
    "Agreed — please go ahead.",
    "Can you add the document to the file when it arrives?",
    "I spoke to them as well; same story.",
    "Good catch. Let's wait for that before we decide.",
    "OK for me. Keep me posted.",
    "Please double-check the amount before you move it on.",
    "Done, thanks!",
]
EDIT_SUFFIXES = [" (corrected: see updated attachment)", " — update: confirmed by phone.", " [edited for typo]"]
DELETE_REASONS = ["Posted on the wrong case.", "Duplicate comment.", "Contained personal data; removed.", ""]

# ---------------------------------------------------------------------------------------------------------
# Processes. The demo's history above is told by people (commands in casestream.demo), under definition versions
# without processes. After it, the demo publishes these versions, which name the shipped BPMN lifecycles
# (processes/definitions/), and opens LIVE_CASES under them: those move through their stages on their own and
# put their review steps in the task inbox.

CUSTOMER_REPLIED = {"on": "CommentAdded", "action": "correlate-message", "value": "customer-replied",
                    "when": '=starts with(actor, "customer:")'}

CLAIM_LIVE: dict[str, Any] = {
    **CLAIM,
    "lifecycle_process": "claim-case",
    "automation": [
        # a claim assigned to a handler leaves intake for the claims team's queue
        {"on": "CaseAssigned", "action": "set-queue", "value": "claims-team", "when": '=assignee != "bob"'},
        CUSTOMER_REPLIED,
    ],
}
COMPLAINT_LIVE: dict[str, Any] = {**COMPLAINT_V2, "lifecycle_process": "complaint-case",
                                  "automation": [CUSTOMER_REPLIED]}
ONBOARDING_LIVE: dict[str, Any] = {**ONBOARDING, "lifecycle_process": "onboarding-case",
                                   "stage_processes": {"activation": ["onboarding-saga"]}}
LIVE_DEFINITIONS: list[dict[str, Any]] = [CLAIM_LIVE, COMPLAINT_LIVE, ONBOARDING_LIVE]

# the onboarding saga keeps its steps' effects in these reference records (and removes them to compensate)
PROCESS_RECORD_TYPES: list[dict[str, Any]] = [
    {"key": "account-number", "name": "Account number", "schema": {
        "type": "object", "required": ["case_id", "status"], "additionalProperties": False,
        "properties": {"case_id": {"type": "string", "format": "uuid"},
                       "status": {"type": "string", "enum": ["reserved", "active"]}}}},
    {"key": "access-grant", "name": "Portal access grant", "schema": {
        "type": "object", "required": ["account_number", "company", "role", "case_id"], "additionalProperties": False,
        "properties": {"account_number": {"type": "string"}, "company": {"type": "string", "minLength": 2},
                       "role": {"type": "string", "enum": ["owner", "viewer"]},
                       "case_id": {"type": "string", "format": "uuid"}}}},
]
