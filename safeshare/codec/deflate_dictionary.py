"""The preset dictionary for compressing payloads (``DEFLATE`` with a preset dictionary).

A payload is small (a few hundred bytes to a few KB of protobuf JSON), too small for DEFLATE to
find much to repeat within it; most of its bytes are field names and enum values that every
payload of its type repeats. These are them: the JSON names of every field and the names of
every enum value of ``sharing.v1`` and ``agency.v1``, and the payload's own metadata words,
taken from the protos once.

👉 Frozen: a payload compressed with a dictionary inflates only with the same bytes, so these
never change (``tests/safeshare/test_codec.py`` pins their digest). Fields added to the protos
later compress a little less, that is all; a better dictionary would be a new one, with a kind
byte of its own, beside this.
"""

from __future__ import annotations

DICTIONARY_1 = "".join(
    [
        "NOTIFICATION_KIND_UNSPECIFIED NOTIFICATION_KIND_TASK NOTIFICATION_KIND_REMINDER "
        'NOTIFICATION_KIND_ESCALATION "caseRef": "subjects": "purpose": '
        '"recipientAgencyId": "categories": "consent": "items": "claimRef": '
        '"claimDigest": "contentDigest": "deliveryId": "holdingAgencyId": "itemBases": '
        '"itemId": "basis": "receipt": "notificationId": "kind": "practitionerRole": '
        '"practitionerUserId": "step": "dueAt": "text": "duplicate": "receivedAt": '
        '"noticeId": "deliveryIds": "withdrawnAt": "deliveriesKnown": '
        '"deliveriesUnknown": agency.v1.LookupConsentRequest '
        "agency.v1.LookupConsentResponse agency.v1.ExtractRecordsRequest "
        "agency.v1.ExtractRecordsResponse agency.v1.ReceiveDeliveryRequest "
        "agency.v1.ItemBasis agency.v1.ReceiveDeliveryResponse "
        "agency.v1.NotifyPractitionerRequest agency.v1.NotifyPractitionerResponse "
        "agency.v1.ReceiveConsentWithdrawnRequest "
        "agency.v1.ReceiveConsentWithdrawnResponse URGENCY_UNSPECIFIED URGENCY_RED "
        "URGENCY_AMBER URGENCY_GREEN PURPOSE_UNSPECIFIED PURPOSE_SAFEGUARDING "
        "PURPOSE_HEALTH_AND_WELLBEING PURPOSE_PROTECTION_FROM_HARM PURPOSE_EDUCATION "
        "PURPOSE_CONTRIBUTION_TO_SOCIETY PURPOSE_SOCIAL_AND_ECONOMIC_WELLBEING "
        "INFORMATION_CATEGORY_UNSPECIFIED INFORMATION_CATEGORY_IDENTITY_AND_CONTACT "
        "INFORMATION_CATEGORY_EDUCATION_ATTENDANCE INFORMATION_CATEGORY_HEALTH_SUMMARY "
        "INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT "
        "INFORMATION_CATEGORY_POLICE_INCIDENTS INFORMATION_CATEGORY_WELFARE_CONCERNS "
        "SUBJECT_ROLE_UNSPECIFIED SUBJECT_ROLE_CHILD SUBJECT_ROLE_PARENT_OR_CARER "
        "SUBJECT_ROLE_HOUSEHOLD_MEMBER CONSENT_STATUS_UNSPECIFIED CONSENT_STATUS_GIVEN "
        "CONSENT_STATUS_REFUSED CONSENT_STATUS_WITHDRAWN CONSENT_STATUS_EXPIRED "
        "CONSENT_STATUS_NOT_COVERING CONSENT_STATUS_NOT_RECORDED "
        "CONSENT_STATUS_NOT_SOUGHT NOT_SOUGHT_REASON_UNSPECIFIED "
        "NOT_SOUGHT_REASON_RISK_TO_CHILD NOT_SOUGHT_REASON_PREJUDICE_POLICE_INVESTIGATION"
        " NOT_SOUGHT_REASON_UNDUE_DELAY NOT_SOUGHT_REASON_CANNOT_BE_CONTACTED "
        "OVERRIDE_REASON_UNSPECIFIED OVERRIDE_REASON_SIGNIFICANT_HARM "
        "OVERRIDE_REASON_PREVENT_OR_DETECT_CRIME OVERRIDE_REASON_SAFEGUARDING_AT_RISK "
        "OVERRIDE_REASON_WELLBEING_DUTY OVERRIDE_REASON_VITAL_INTERESTS "
        "ITEM_KIND_UNSPECIFIED ITEM_KIND_FACT ITEM_KIND_OPINION "
        "HANDLING_CAVEAT_UNSPECIFIED HANDLING_CAVEAT_DO_NOT_CONTACT_PARENTS_OR_CARERS "
        "HANDLING_CAVEAT_DO_NOT_TELL_THE_CHILD "
        "HANDLING_CAVEAT_POLICE_INVESTIGATION_DO_NOT_SHARE_FURTHER "
        "HANDLING_CAVEAT_DSL_ONLY ACKNOWLEDGEMENT_STATUS_UNSPECIFIED "
        "ACKNOWLEDGEMENT_STATUS_RECEIVED ACKNOWLEDGEMENT_STATUS_ACTIONED "
        "CASE_STATE_UNSPECIFIED CASE_STATE_REQUESTED CASE_STATE_CHECKING_CONSENT "
        "CASE_STATE_DELIVERING CASE_STATE_AWAITING_ACKNOWLEDGEMENT CASE_STATE_CLOSED "
        "CASE_STATE_AWAITING_CONSENT_DECISION CASE_STATE_AWAITING_OVERRIDE_DECISION "
        "CASE_STATE_EXCHANGING OUTCOME_UNSPECIFIED OUTCOME_SHARED_WITH_CONSENT "
        "OUTCOME_NOT_SHARED OUTCOME_SHARED_UNDER_OVERRIDE "
        "OUTCOME_REJECTED_BY_PROTOCOL_GATE OUTCOME_WITHDRAWN OUTCOME_PARTLY_SHARED "
        "WAITING_ON_UNSPECIFIED WAITING_ON_SYSTEM WAITING_ON_HOLDER WAITING_ON_RECIPIENT "
        "WAITING_ON_APPROVER WAITING_ON_OPERATOR BASIS_KIND_UNSPECIFIED "
        "BASIS_KIND_CONSENT BASIS_KIND_OVERRIDE BASIS_KIND_SHARE_FIRST "
        "DISCLOSURE_KIND_UNSPECIFIED DISCLOSURE_KIND_OPERATION_ENCOMPASS "
        "DISCLOSURE_KIND_CONCERN DISCLOSURE_KIND_CHILD_PROTECTION_FILE_TRANSFER "
        "CHILD_PRESENCE_UNSPECIFIED CHILD_PRESENCE_PRESENT CHILD_PRESENCE_NOT_PRESENT "
        '"userId": "role": "trainingValidUntil": "givenName": "familyName": '
        '"dateOfBirth": "nhsNumber": "postcode": "category": "necessity": "requestId": '
        '"requester": "holdingAgencyIds": "lawfulBasis": "urgency": "requiredBy": '
        '"agencyReference": "familyAware": "familyNotAwareReason": "requestingAgencyId": '
        '"gatewaySeal": "status": "givenByRelationship": "parentalResponsibility": '
        '"purposes": "recipientAgencyIds": "validFrom": "validUntil": "verification": '
        '"viewsExpressed": "recordId": "version": "source": "recordedAt": "content": '
        '"caveats": "itemCount": "practitioner": "use": "feedback": "agencyId": '
        '"acknowledgedAt": "at": "event": "detail": "outcome": "request": "entries": '
        '"holders": "gate": "withdrawal": "urgencyChanges": "disclosure": "reason": '
        '"explanation": "actor": "notSought": "decidedAt": "consentStateOverridden": '
        '"harmStatement": "legalBasis": "reasonCode": "necessityAndProportionality": '
        '"minimumDataSet": "alternativesConsidered": "adviceSought": "subjectWillBeTold":'
        ' "subjectToldBy": "notTellingReason": "proposedAt": "approve": "reasons": '
        '"changedAt": "withdrawnByRelationship": "recipientNotified": "passed": '
        '"protocolVersion": "registryVersion": "calendars": "timescales": '
        '"gatewayPublicKey": "unsealedCommandsAccepted": "region": "timeZone": '
        '"firstDate": "lastDate": "nonWorkingDates": "offsets": "dayStartsMinute": '
        '"dayEndsMinute": "schoolTerms": "schoolDayStartsMinute": "from": '
        '"offsetSeconds": "first": "last": "minutes": "workingHours": "leadAfterPeriod": '
        '"operatorAfterPeriod": "seconds": "policyVersion": "level": "holderCalendar": '
        '"recipientCalendar": "state": "waitingOn": "nextDeadline": "consentDecision": '
        '"overrideProposal": "overrideDecision": "shareFirst": "decline": "sharedItems": '
        '"acknowledgement": "consentWithdrawal": "escalations": "overrideUsed": '
        '"deliveryFailures": "consentRecordId": "consentVersion": "overrideReason": '
        '"shared": "sharedAt": "notSharedReason": "record": "entryNumber": '
        '"policeReference": "incidentAt": "incidentPlace": "childPresent": '
        '"voiceOfTheChild": "circumstances": "concern": "actionTaken": "fileReference": '
        '"startsAtNewSchoolOn": "contentsSummary": "consentState": "withoutConsent": '
        '"disclosureId": "discloser": "noSchoolPlace": "operationEncompass": '
        '"childProtectionFile": "decidedBy": "notMade": "routedBecause": "acknowledgeBy":'
        ' "deadlineMet": "approval": "recipients": "approvalEscalations": "commandId": '
        '"signature": sharing.v1.Practitioner sharing.v1.Subject '
        "sharing.v1.CategoryRequest sharing.v1.SharingRequest sharing.v1.ConsentRecord "
        "sharing.v1.RecordItem sharing.v1.DeliveryReceipt sharing.v1.Acknowledgement "
        "sharing.v1.DecisionEntry sharing.v1.DecisionRecord sharing.v1.Actor "
        "sharing.v1.NotSought sharing.v1.ConsentDecision sharing.v1.OverrideProposal "
        "sharing.v1.OverrideDecision sharing.v1.ShareFirstDecision "
        "sharing.v1.DeclineDecision sharing.v1.RequestWithdrawal sharing.v1.UrgencyChange"
        " sharing.v1.ConsentWithdrawal sharing.v1.GateResult sharing.v1.ResolvedCalendar "
        "sharing.v1.UtcOffsetChange sharing.v1.DateRange sharing.v1.Timescale "
        "sharing.v1.TimescalePolicy sharing.v1.GateCheck sharing.v1.Escalation "
        "sharing.v1.HolderExchangeInput sharing.v1.HolderRecord sharing.v1.SharingBasis "
        "sharing.v1.CategoryDecision sharing.v1.SharedItem sharing.v1.CaseView "
        "sharing.v1.CommandResult sharing.v1.ConsentWithdrawalNoticeInput "
        "sharing.v1.OperationEncompassNotification sharing.v1.ConcernRaised "
        "sharing.v1.ChildProtectionFileTransfer sharing.v1.WithoutConsent "
        "sharing.v1.DisclosureConsent sharing.v1.Disclosure sharing.v1.DisclosureNotMade "
        "sharing.v1.DisclosureCaseInput sharing.v1.DisclosureApproval "
        "sharing.v1.DisclosureGateCheck sharing.v1.DisclosureGateResult "
        "sharing.v1.RecipientRecord sharing.v1.DisclosureRecord sharing.v1.GatewaySeal "
        "encoding json/plain json/protobuf messageType"
    ]
).encode()
