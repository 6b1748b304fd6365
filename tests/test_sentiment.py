from agentops.signals.sentiment import score_text, score_user_sentiment


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_positive_user_turns_score_positive() -> None:
    score = score_user_sentiment([user("Thanks, that was really helpful!"), user("Perfect.")])
    assert 0.5 < score <= 1.0


def test_negative_user_turns_score_negative() -> None:
    score = score_user_sentiment(
        [user("This is ridiculous."), user("I'm so frustrated, the worst service ever.")]
    )
    assert -1.0 <= score < -0.8


def test_negation_flips_the_word_it_governs() -> None:
    assert score_text("I am happy") > 0
    assert score_text("I am not happy") < 0
    assert score_text("I don't love this") < 0
    assert score_text("not bad at all") > 0
    # A negator only reaches inside its own clause.
    assert score_text("No, that is great") == score_text("that is great")


def test_no_signal_scores_zero() -> None:
    assert score_user_sentiment([]) == 0.0
    assert score_user_sentiment([user("My user id is mia_li_3668.")]) == 0.0
    assert score_text("") == 0.0


def test_only_user_turns_count() -> None:
    agent_politeness = {"role": "assistant", "content": "Great, thanks! Wonderful, perfect!"}
    tool_output = {"role": "tool", "content": "terrible awful"}
    messages = [agent_politeness, tool_output, user("This is useless.")]
    assert score_user_sentiment(messages) == score_user_sentiment([user("This is useless.")])
    assert score_user_sentiment(messages) < 0


def test_content_parts_are_read_and_score_stays_bounded() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "awful awful awful"}]}
    assert score_user_sentiment([parts]) < 0
    assert score_user_sentiment([user("excellent! " * 200)]) <= 1.0
