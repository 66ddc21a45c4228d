"""SNS: exact topic policies and unconfirmed email subscriptions.

- moto re-serialises a topic policy compactly, so GetTopicAttributes does not
  return the document that was set and the provider would see drift on every
  refresh. We keep the text as written while it still means the same thing.
- AWS never confirms an email subscription by itself: a person has to click
  the link. Until then Subscribe answers "pending confirmation" (unless
  ReturnSubscriptionArn is set), the listings show the SubscriptionArn as
  "PendingConfirmation", and its attributes say PendingConfirmation=true.
  moto confirms every subscription at once; the provider's handling of
  unconfirmed subscriptions could not be tested against that.
"""

from __future__ import annotations

import json
from typing import Any

from moto.sns.models import SNSBackend, Subscription, Topic, sns_backends
from werkzeug.wrappers import Response

from ..wire import AwsRequest

CONFIRMED_BY_A_PERSON = ("email", "email-json")


# -------------------------------------------------------------- policies --


def _get_policy(topic: Topic) -> str:
    written = getattr(topic, "_policy_text", None)
    if written is not None and json.loads(written) == topic._policy_json:
        return written
    # Changed since (AddPermission edits the document in place): moto's form.
    return json.dumps(topic._policy_json, separators=(",", ":"))


def _set_policy(topic: Topic, policy: Any) -> None:
    topic._policy_json = json.loads(policy)
    topic._policy_text = policy


# --------------------------------------------------------- subscriptions --


def _is_pending(subscription: Subscription) -> bool:
    return subscription.attributes.get("PendingConfirmation") is True


def _subscribe_pending(original: Any) -> Any:
    def subscribe(backend: SNSBackend, topic_arn: str, endpoint: str, protocol: str) -> Subscription:
        existed = backend._find_subscription(topic_arn, endpoint, protocol) is not None
        subscription = original(backend, topic_arn, endpoint, protocol)
        if protocol in CONFIRMED_BY_A_PERSON and not existed:
            subscription.attributes["PendingConfirmation"] = True
            subscription.attributes["ConfirmationWasAuthenticated"] = False
        return subscription

    return subscribe


def _backend(request: AwsRequest) -> SNSBackend:
    return sns_backends[request.account][request.region]


def _replace_arn(response: Response, arn: str, shown_as: str) -> None:
    text = response.get_data(as_text=True)
    response.set_data(
        text.replace(f"<SubscriptionArn>{arn}</SubscriptionArn>", f"<SubscriptionArn>{shown_as}</SubscriptionArn>")
    )


def subscribe(request: AwsRequest, forward: Any) -> Response:
    response = forward(request)
    if response.status_code != 200:
        return response
    wants_arn = request.form.get("ReturnSubscriptionArn", ["false"])[0].lower() == "true"
    subscription = _backend(request)._find_subscription(
        request.form.get("TopicArn", [""])[0],
        request.form.get("Endpoint", [""])[0],
        request.form.get("Protocol", [""])[0],
    )
    if subscription is not None and _is_pending(subscription) and not wants_arn:
        _replace_arn(response, subscription.arn, "pending confirmation")
    return response


def list_subscriptions(request: AwsRequest, forward: Any) -> Response:
    response = forward(request)
    if response.status_code == 200:
        for subscription in list(_backend(request).subscriptions.values()):
            if _is_pending(subscription):
                _replace_arn(response, subscription.arn, "PendingConfirmation")
    return response


def patch() -> None:
    Topic.policy = property(_get_policy, _set_policy)  # type: ignore[method-assign,assignment]
    SNSBackend.subscribe = _subscribe_pending(SNSBackend.subscribe)  # type: ignore[method-assign]


HANDLERS = {
    ("sns", "Subscribe"): subscribe,
    ("sns", "ListSubscriptionsByTopic"): list_subscriptions,
    ("sns", "ListSubscriptions"): list_subscriptions,
}
