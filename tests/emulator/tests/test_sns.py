"""SNS topics: exact policies, and email subscriptions awaiting a person."""

from __future__ import annotations

import json

from conftest import ACCOUNT, REGION, Emulator


def topic_policy(topic_arn: str, service: str) -> str:
    return json.dumps(
        {
            "Version": "2008-10-17",
            "Statement": [
                {
                    "Sid": "AllowPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                }
            ],
        },
        indent=2,
    )


def test_topic_attributes_read_back_as_written(emulator: Emulator, unique) -> None:
    sns = emulator.client("sns")
    name = unique("alerts")
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    created = sns.create_topic(
        Name=name,
        Attributes={"KmsMasterKeyId": key, "Policy": topic_policy(arn, "events.amazonaws.com")},
        Tags=[{"Key": "team", "Value": "ci"}],
    )
    assert created["TopicArn"] == arn

    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["Policy"] == topic_policy(arn, "events.amazonaws.com")
    assert attributes["KmsMasterKeyId"] == key

    sns.set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=topic_policy(arn, "codestar-notifications.amazonaws.com")
    )
    sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue="alias/aws/sns")
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["Policy"] == topic_policy(arn, "codestar-notifications.amazonaws.com")
    assert attributes["KmsMasterKeyId"] == "alias/aws/sns"

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "cost", "Value": "7"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "cost", "Value": "7"}]

    sns.delete_topic(TopicArn=arn)
    assert not any(t["TopicArn"] == arn for t in sns.list_topics()["Topics"])


def test_default_policy_is_still_served(emulator: Emulator, unique) -> None:
    sns = emulator.client("sns")
    arn = sns.create_topic(Name=unique("plain"))["TopicArn"]
    policy = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])
    assert policy["Statement"][0]["Resource"] == arn


def test_email_subscriptions_wait_for_confirmation(emulator: Emulator, unique) -> None:
    sns = emulator.client("sns")
    arn = sns.create_topic(Name=unique("alerts"))["TopicArn"]

    assert sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.com")["SubscriptionArn"] == (
        "pending confirmation"
    )
    real_arn = sns.subscribe(
        TopicArn=arn, Protocol="email", Endpoint="dev@example.com", ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    assert real_arn.startswith(arn + ":")

    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert sorted((s["Endpoint"], s["SubscriptionArn"]) for s in listed) == [
        ("dev@example.com", "PendingConfirmation"),
        ("ops@example.com", "PendingConfirmation"),
    ]
    everywhere = [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == arn]
    assert {s["SubscriptionArn"] for s in everywhere} == {"PendingConfirmation"}

    attributes = sns.get_subscription_attributes(SubscriptionArn=real_arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "true"
    assert attributes["ConfirmationWasAuthenticated"] == "false"

    sns.unsubscribe(SubscriptionArn=real_arn)
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["Endpoint"] for s in listed] == ["ops@example.com"]


def test_non_email_subscriptions_are_confirmed(emulator: Emulator, unique) -> None:
    sns = emulator.client("sns")
    sqs = emulator.client("sqs")
    arn = sns.create_topic(Name=unique("fanout"))["TopicArn"]
    queue_url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    subscription = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    assert subscription.startswith(arn + ":")
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["SubscriptionArn"] == subscription
