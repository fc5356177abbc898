//! Unit tests of the engine's policy: no store, no model, no network.

use super::*;
use crate::domain::owner::Owner;
use crate::store::handoffs::Spent;

fn settings(overrides: &[(&str, &str)]) -> Effective {
    let defaults = crate::settings::defaults(&crate::config::Config::default());
    let o: Vec<(String, String)> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Effective::new(&defaults, &o)
}

fn facts(texts: &[&str]) -> Facts {
    Facts {
        wamid: "wamid.1".into(),
        conversation_id: 7,
        texts: texts.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

fn policy() -> Policy {
    Policy {
        media_failure_handoff: false,
        handoff_cooldown_ms: 60_000,
    }
}

fn trigger_of(plan: &Plan) -> Option<HandoffTrigger> {
    match plan {
        Plan::Fixed {
            decision: Decision::Handoff { trigger, .. },
            ..
        } => Some(*trigger),
        _ => None,
    }
}

#[test]
fn stop_and_start_whoever_owns_the_conversation_latest_wins() {
    let s = settings(&[]);
    let mut f = facts(&["STOP"]);
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::Opt {
            opt_out: true,
            changed: true
        }
    );
    f.conversation.owner = Owner::Human;
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::Opt {
            opt_out: true,
            changed: true
        }
    );
    f.conversation.opted_out = true;
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::Opt {
            opt_out: true,
            changed: false
        }
    );
    let f = Facts {
        conversation: f.conversation.clone(),
        ..facts(&["stop", "Start!"])
    };
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::Opt {
            opt_out: false,
            changed: true
        }
    );
}

#[test]
fn opted_out_or_human_owned_is_silent_unless_a_handoff_is_unfinished() {
    let s = settings(&[]);
    let mut f = facts(&["where is my order"]);
    f.conversation.opted_out = true;
    assert_eq!(decide(&f, &s, &policy()), Plan::Silent(SILENT_OPTED_OUT));
    f.conversation.opted_out = false;
    f.conversation.owner = Owner::Human;
    assert_eq!(decide(&f, &s, &policy()), Plan::Silent(SILENT_HUMAN_OWNER));
    // Even under the kill switch, a person's conversation stays silent.
    assert_eq!(
        decide(&f, &settings(&[("kill_switch", "on")]), &policy()),
        Plan::Silent(SILENT_HUMAN_OWNER)
    );
    f.conversation.handoff_for_inbound = Some((3, "asked_for_human".into()));
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::FinishHandoff {
            handoff_id: 3,
            trigger: "asked_for_human".into()
        }
    );
}

#[test]
fn rules_hand_off_before_any_model() {
    let f = facts(&["hi", "can I talk to a person please"]);
    assert_eq!(
        trigger_of(&decide(&f, &settings(&[]), &policy())),
        Some(HandoffTrigger::AskedForHuman)
    );
    let kill = settings(&[("kill_switch", "on")]);
    let plan = decide(&facts(&["opening hours?"]), &kill, &policy());
    assert_eq!(trigger_of(&plan), Some(HandoffTrigger::KillSwitch));
    let Plan::Fixed {
        route_reason, guard, ..
    } = plan
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (route_reason.as_str(), guard),
        (
            "the kill switch is on: every conversation goes to people",
            "skipped: handoff"
        )
    );
}

#[test]
fn unusable_media_asks_for_text_or_hands_off_by_config() {
    let mut f = facts(&[""]);
    f.unusable_media = Some(("audio".into(), true));
    let plan = decide(&f, &settings(&[]), &policy());
    let Plan::Fixed {
        decision: Decision::Answer { text, .. },
        route_reason,
        guard,
    } = plan
    else {
        panic!("{plan:?}")
    };
    assert!(text.contains("voice note"), "{text}");
    assert!(route_reason.ends_with("asked for text") && guard == "skipped: fixed text");
    let handoff = Policy {
        media_failure_handoff: true,
        ..policy()
    };
    assert_eq!(
        trigger_of(&decide(&f, &settings(&[]), &handoff)),
        Some(HandoffTrigger::MediaFailed)
    );
}

#[test]
fn budgets_come_from_the_gathered_spend() {
    let s = settings(&[("budget.contact_daily_usd", "1"), ("budget.global_daily_usd", "10")]);
    let mut f = facts(&["opening hours?"]);
    assert_eq!(
        decide(&f, &s, &policy()),
        Plan::Route {
            allowance: Allowance::Full
        },
        "no model: no spend read"
    );
    f.conversation.spent = Some(Spent {
        contact_usd: 0.9,
        ..Default::default()
    });
    assert!(matches!(allowance(&f, &s), Allowance::Cheaper(_)));
    f.conversation.spent = Some(Spent {
        global_usd: 10.0,
        ..Default::default()
    });
    let Plan::Route { allowance: a } = decide(&f, &s, &policy()) else {
        panic!()
    };
    assert!(
        matches!(&a, Allowance::Exhausted(r) if r.contains("daily budget")),
        "{a:?}"
    );
    assert!(!needs_classifier(false, &a), "a spent budget asks no classifier");
    assert!(needs_classifier(false, &Allowance::Full) && !needs_classifier(true, &Allowance::Full));
}

fn input<'a>(rule: Option<(&'a Rule, &'a str)>, classified: Option<&'a Classified>, recent: usize) -> RouteInput<'a> {
    RouteInput {
        rule,
        classified,
        note: None,
        recent,
    }
}

#[test]
fn routing_rules_then_label_then_turns_within_the_budget() {
    let rules = router::parse_rules("legal: lawyer => handoff\nsensitive: complaint => reasoning").unwrap();
    let (legal, complaint) = (&rules[0], &rules[1]);
    let full = Allowance::Full;
    let r = route(input(Some((legal, "lawyer")), None, 1), &full, |_| true);
    assert_eq!((r.label, r.reason.as_str()), ("handoff", "rule legal (\"lawyer\")"));
    assert!(matches!(
        r.decision,
        Some(Decision::Handoff {
            trigger: HandoffTrigger::Routed,
            ..
        })
    ));
    // Reasoning with a model; with none, a sensitive topic goes to a person.
    let r = route(input(Some((complaint, "complaint")), None, 1), &full, |_| true);
    assert_eq!(
        (r.label, r.tier, r.offline, r.decision),
        ("reasoning", Tier::Reasoning, false, None)
    );
    let r = route(input(Some((complaint, "complaint")), None, 1), &full, |_| false);
    assert!(
        r.offline
            && matches!(
                r.decision,
                Some(Decision::Handoff {
                    trigger: HandoffTrigger::Sensitive,
                    ..
                })
            )
    );
    assert!(
        r.reason
            .ends_with("no model configured for this tier: offline responder"),
        "{}",
        r.reason
    );
    // A routine question with no model: the offline responder answers.
    let r = route(input(None, None, 1), &full, |_| false);
    assert_eq!((r.label, r.offline, r.decision), ("commodity", true, None));
    // More than three turns on one issue: reasoning (no topic, so offline still answers).
    let r = route(input(None, None, 4), &full, |_| false);
    assert_eq!((r.label, r.decision), ("reasoning", None));
    // The classifier's label routes when no rule matched.
    let label = Classified {
        by: "centroid",
        label: "card_lost".into(),
        score: 0.8,
        route: router::Route::Handoff,
    };
    let r = route(input(None, Some(&label), 1), &full, |_| true);
    assert_eq!(r.reason, "centroid label card_lost (0.80)");
    assert!(matches!(
        r.decision,
        Some(Decision::Handoff {
            trigger: HandoffTrigger::Routed,
            ..
        })
    ));
}

#[test]
fn budgets_make_routing_cheaper_then_hand_off() {
    let rules = router::parse_rules("sensitive: complaint => reasoning").unwrap();
    let rule = Some((&rules[0], "complaint"));
    let cheaper = Allowance::Cheaper("over 80%".into());
    let r = route(input(rule, None, 1), &cheaper, |_| true);
    assert_eq!((r.label, r.tier), ("commodity", Tier::Commodity));
    assert!(r.reason.ends_with("over 80%: commodity tier instead"), "{}", r.reason);
    let spent = Allowance::Exhausted("spent".into());
    let r = route(input(None, None, 1), &spent, |_| true);
    assert_eq!(r.decision, Some(Decision::handoff(HandoffTrigger::Budget, "spent")));
    // Without a model the budget does not apply.
    assert_eq!(route(input(None, None, 1), &spent, |_| false).decision, None);
}

#[test]
fn a_hand_back_suppresses_the_same_trigger_for_a_while() {
    let back = Handback {
        trigger: "low_confidence".into(),
        at: 1_000,
        note: String::new(),
    };
    let low = || Decision::Handoff {
        trigger: HandoffTrigger::LowConfidence,
        reason: "far".into(),
        confidence: Some(0.2),
    };
    let (d, guard) = after_handback(low(), Some(&back), 2_000, 60_000);
    assert!(
        matches!(d, Decision::Answer { ref text, confidence, .. } if text == SUPPRESSED_HANDOFF_TEXT && confidence == 0.2)
    );
    assert_eq!(
        guard.unwrap(),
        "handoff suppressed (low_confidence: far); handed back recently"
    );
    assert_eq!(
        after_handback(low(), Some(&back), 70_000, 60_000),
        (low(), None),
        "cooldown over"
    );
    assert_eq!(after_handback(low(), None, 2_000, 60_000), (low(), None));
    let asked = Decision::handoff(HandoffTrigger::AskedForHuman, "asked");
    let back = Handback {
        trigger: "asked_for_human".into(),
        ..back
    };
    assert_eq!(
        after_handback(asked.clone(), Some(&back), 2_000, 60_000),
        (asked, None),
        "always hands off"
    );
}

#[test]
fn triggers_keep_their_stored_names() {
    let names = [
        "kill_switch",
        "asked_for_human",
        "media_failed",
        "routed",
        "budget",
        "sensitive",
        "tool_failed",
        "no_knowledge",
        "no_vectors",
        "low_confidence",
        "model_unavailable",
        "tool_loop",
        "malformed_reply",
        "model_handoff",
        "ungrounded",
        "reply_interrupted",
        "no_answer",
    ];
    for (t, name) in HandoffTrigger::ALL.into_iter().zip(names) {
        assert_eq!((t.as_str(), t.to_string()), (name, name.to_string()));
        assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(name));
        assert_eq!(HandoffTrigger::parse(name), Some(t));
    }
    assert_eq!(HandoffTrigger::parse("something_new"), None);
    let s = settings(&[
        ("static_reply", "We are closed."),
        ("bridge_text", "A teammate will answer."),
        ("unknown_text", "I don't know; a teammate will."),
    ]);
    assert_eq!(handoff_message(&s, "no_answer"), "I don't know; a teammate will.");
    assert_eq!(handoff_message(&s, "no_knowledge"), "I don't know; a teammate will.");
    assert_eq!(handoff_message(&s, "low_confidence"), "A teammate will answer.");
    assert_eq!(handoff_message(&s, "kill_switch"), "We are closed.");
    assert_eq!(handoff_message(&s, "budget"), "We are closed.");
    assert_eq!(handoff_message(&s, "ungrounded"), "A teammate will answer.");
    assert_eq!(handoff_message(&s, "something_new"), "A teammate will answer.");
}

#[test]
fn a_question_no_passage_answers_goes_to_a_person_with_the_honest_text() {
    let no_answer = |d: Option<Decision>| {
        matches!(
            d,
            Some(Decision::Handoff {
                trigger: HandoffTrigger::NoAnswer,
                confidence: Some(_),
                ..
            })
        )
    };
    assert!(no_answer(unanswered(Some(0.12), 0.3, true)));
    // Close enough, not a question ("thanks!"), keyword-only retrieval, or the floor off.
    assert_eq!(unanswered(Some(0.45), 0.3, true), None);
    assert_eq!(unanswered(Some(0.12), 0.3, false), None);
    assert_eq!(unanswered(None, 0.3, true), None);
    assert_eq!(unanswered(Some(0.12), 0.0, true), None);
}

#[test]
fn every_trigger_has_its_own_plain_sentence_for_agents() {
    let mut seen = std::collections::HashSet::new();
    for t in HandoffTrigger::ALL {
        let s = t.for_agent();
        assert!(
            s.ends_with('.') && s.starts_with(char::is_uppercase),
            "{t}: a sentence, not a label: {s}"
        );
        assert!(
            !s.contains('_') && !s.contains('$') && !s.chars().any(|c| c.is_ascii_digit()),
            "{t}: no setting names, sums or scores: {s}"
        );
        assert!(seen.insert(s), "{t}: its own sentence");
        assert_eq!(HandoffTrigger::explain(t.as_str()), s);
    }
    assert_eq!(
        HandoffTrigger::explain("something_new"),
        "The bot handed this conversation to a person."
    );
}
