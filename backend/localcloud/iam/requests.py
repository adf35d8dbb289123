"""What one AWS API request needs permission for: its IAM action(s), on which resource ARN(s), and
the condition keys the local cloud can supply.

The mapping follows the Service Authorization Reference for the calls skydeck's components make
(S3 objects and listings, SQS, SNS, DynamoDB, Lambda invoke, Auto Scaling, EC2 tags, CloudWatch
Logs). Any other call still gets its true action name (from the query's Action, the JSON target,
or the REST route), with the resource `*`: no role in `stacks/` grants those actions, so it is
refused as AWS would refuse it, and the operator's own key is not checked at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from backend.localcloud.iam.policy import Authorization, ContextValue

# requests that need no permission on AWS
UNCHECKED = frozenset({"sts:GetCallerIdentity"})

ResourceTags = Callable[[str], Mapping[str, str]]  # ARN -> its tags (empty when unknown)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str  # raw path, still %-encoded
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    service: str  # from the signature's credential scope
    region: str
    account: str

    def form(self) -> dict[str, list[str]]:
        params = parse_qs(self.query, keep_blank_values=True)
        if self.method == "POST" and "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
        return params

    def json_body(self) -> dict[str, object]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _first(params: Mapping[str, list[str]], name: str) -> str:
    return (params.get(name) or [""])[0]


def _indexed(params: Mapping[str, list[str]], prefix: str, suffix: str = "") -> list[str]:
    """Values of Prefix.1, Prefix.2, ... (or Prefix.N.Suffix) in a query-protocol request."""
    found = []
    for key, values in params.items():
        if not key.startswith(prefix + "."):
            continue
        rest = key[len(prefix) + 1 :]
        number, _, tail = rest.partition(".")
        if number.isdigit() and tail == suffix.lstrip("."):
            found.append((int(number), values[0]))
    return [v for _, v in sorted(found)]


# -- S3 -----------------------------------------------------------------------------------------

_BUCKET_SUBRESOURCES = {
    # subresource: (GET action, PUT action, DELETE action)
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", ""),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "acl": ("GetBucketAcl", "PutBucketAcl", ""),
    "logging": ("GetBucketLogging", "PutBucketLogging", ""),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "notification": ("GetBucketNotification", "PutBucketNotification", ""),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "location": ("GetBucketLocation", "", ""),
    "versions": ("ListBucketVersions", "", ""),
    "uploads": ("ListBucketMultipartUploads", "", ""),
}
_OBJECT_SUBRESOURCES = {
    "tagging": ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    "acl": ("GetObjectAcl", "PutObjectAcl", ""),
    "retention": ("GetObjectRetention", "PutObjectRetention", ""),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", ""),
    "attributes": ("GetObjectAttributes", "", ""),
}
_COLUMN = {"GET": 0, "HEAD": 0, "PUT": 1, "DELETE": 2}


def _s3_bucket_key(request: ApiRequest) -> tuple[str, str]:
    host = request.headers.get("host", "").split(":")[0]
    path = request.path.split("?", 1)[0]
    # a virtual-hosted request (bucket.s3.amazonaws.com, bucket.localhost) names its bucket in the host
    for suffix in (".s3.amazonaws.com", f".s3.{request.region}.amazonaws.com", ".localhost"):
        if host.endswith(suffix):
            return host[: -len(suffix)], unquote(path.lstrip("/"))
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def _s3(request: ApiRequest, tags: ResourceTags) -> list[Authorization]:
    bucket, key = _s3_bucket_key(request)
    params = parse_qs(request.query, keep_blank_values=True)
    method = request.method
    if not bucket:
        return [Authorization("s3:ListAllMyBuckets", "*")]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in params:
            return [Authorization("s3:DeleteObject", f"{bucket_arn}/{k}") for k in _deleted_keys(request.body)]
        for sub, actions in _BUCKET_SUBRESOURCES.items():
            if sub in params:
                action = actions[_COLUMN.get(method, 0)] if method in _COLUMN else ""
                return [Authorization(f"s3:{action or 'Unknown' + sub.title()}", bucket_arn)]
        if method in ("GET", "HEAD"):
            context: dict[str, ContextValue] = {"s3:prefix": _first(params, "prefix")}
            return [Authorization("s3:ListBucket", bucket_arn, context)]
        action = {"PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, "UnknownBucketOperation")
        return [Authorization(f"s3:{action}", bucket_arn)]
    object_arn = f"{bucket_arn}/{key}"
    for sub, actions in _OBJECT_SUBRESOURCES.items():
        if sub in params:
            action = actions[_COLUMN.get(method, 0)] if method in _COLUMN else ""
            return [Authorization(f"s3:{action or 'Unknown' + sub.title()}", object_arn)]
    if method in ("GET", "HEAD"):
        if "uploadId" in params:
            return [Authorization("s3:ListMultipartUploadParts", object_arn)]
        action = "s3:GetObjectVersion" if "versionId" in params else "s3:GetObject"
        return [Authorization(action, object_arn)]
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in params else "s3:DeleteObject"
        return [Authorization(action, object_arn)]
    needed = [Authorization("s3:PutObject", object_arn)]  # PUT, multipart create/part/complete
    source = request.headers.get("x-amz-copy-source", "")
    if method == "PUT" and source:
        source_path = unquote(source.split("?", 1)[0]).lstrip("/")
        needed.append(Authorization("s3:GetObject", f"arn:aws:s3:::{source_path}"))
    return needed


def _deleted_keys(body: bytes) -> list[str]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return [""]
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"] or [""]


# -- JSON-protocol services ---------------------------------------------------------------------------

_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _queue_arn(request: ApiRequest, queue_url_or_name: str) -> str:
    name = queue_url_or_name.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{request.region}:{request.account}:{name}"


def _sqs(request: ApiRequest, operation: str, queue_url: str, queue_name: str) -> list[Authorization]:
    action = "sqs:" + _SQS_BATCH.get(operation, operation)
    if operation in ("CreateQueue", "GetQueueUrl"):  # named, not yet addressed by URL
        return [Authorization(action, _queue_arn(request, queue_name))]
    if operation == "ListQueues":
        return [Authorization(action, f"arn:aws:sqs:{request.region}:{request.account}:*")]
    return [Authorization(action, _queue_arn(request, queue_url) if queue_url else "*")]


def _dynamodb(request: ApiRequest, operation: str) -> list[Authorization]:
    body = request.json_body()
    prefix = f"arn:aws:dynamodb:{request.region}:{request.account}:table/"
    action = "dynamodb:" + operation
    if operation in ("BatchWriteItem", "BatchGetItem"):
        tables = body.get("RequestItems")
        return [Authorization(action, prefix + str(t)) for t in (tables if isinstance(tables, dict) else {})] or [
            Authorization(action, "*")
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        needed = []
        items = body.get("TransactItems")
        for item in items if isinstance(items, list) else []:
            for kind, detail in item.items() if isinstance(item, dict) else []:
                table = detail.get("TableName") if isinstance(detail, dict) else None
                verb = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}.get(kind)
                if verb:
                    needed.append(Authorization(f"dynamodb:{verb}", prefix + str(table)))
                elif kind == "ConditionCheck":
                    needed.append(Authorization("dynamodb:ConditionCheckItem", prefix + str(table)))
        return needed or [Authorization(action, "*")]
    table = body.get("TableName")
    if not table:
        return [Authorization(action, "*")]
    resource = prefix + str(table)
    if body.get("IndexName") and operation in ("Query", "Scan"):
        resource += f"/index/{body['IndexName']}"
    return [Authorization(action, resource)]


def _logs(request: ApiRequest, operation: str) -> list[Authorization]:
    body = request.json_body()
    group = body.get("logGroupName")
    if not group:
        return [Authorization("logs:" + operation, "*")]
    arn = f"arn:aws:logs:{request.region}:{request.account}:log-group:{group}"
    stream = body.get("logStreamName")
    return [Authorization("logs:" + operation, f"{arn}:log-stream:{stream}" if stream else f"{arn}:*")]


def _json_target(request: ApiRequest, target: str) -> list[Authorization]:
    prefix, _, operation = target.rpartition(".")
    if prefix.startswith("DynamoDB"):
        return _dynamodb(request, operation)
    if prefix == "AmazonSQS":
        body = request.json_body()
        return _sqs(request, operation, str(body.get("QueueUrl") or ""), str(body.get("QueueName") or ""))
    if prefix.startswith("Logs"):
        return _logs(request, operation)
    return [Authorization(f"{request.service}:{operation}", "*")]


# -- query-protocol services ----------------------------------------------------------------------


def _query(request: ApiRequest, tags: ResourceTags) -> list[Authorization]:
    params = request.form()
    operation = _first(params, "Action")
    service = request.service
    if service == "sqs":
        queue_url = _first(params, "QueueUrl") or (request.path if request.path.count("/") >= 2 else "")
        return _sqs(request, operation, queue_url, _first(params, "QueueName"))
    if service == "sns":
        action = "sns:" + ("Publish" if operation == "PublishBatch" else operation)
        if operation == "CreateTopic":
            return [Authorization(action, f"arn:aws:sns:{request.region}:{request.account}:{_first(params, 'Name')}")]
        arn = _first(params, "TopicArn") or _first(params, "TargetArn") or _first(params, "SubscriptionArn")
        return [Authorization(action, arn or "*")]
    if service == "autoscaling":
        group = _first(params, "AutoScalingGroupName")
        if group and not operation.startswith("Describe"):
            arn = (
                f"arn:aws:autoscaling:{request.region}:{request.account}:autoScalingGroup:"
                f"00000000-0000-0000-0000-000000000000:autoScalingGroupName/{group}"
            )
            return [Authorization(f"autoscaling:{operation}", arn)]
        return [Authorization(f"autoscaling:{operation}", "*")]
    if service == "ec2" and operation in ("CreateTags", "DeleteTags"):
        keys = _indexed(params, "Tag", "Key")
        needed = []
        for resource_id in _indexed(params, "ResourceId"):
            kind = {"i": "instance", "vol": "volume", "sg": "security-group"}.get(resource_id.split("-")[0], "")
            arn = f"arn:aws:ec2:{request.region}:{request.account}:{kind or 'resource'}/{resource_id}"
            context: dict[str, ContextValue] = {"aws:TagKeys": keys}
            context.update({f"aws:ResourceTag/{k}": v for k, v in tags(arn).items()})
            needed.append(Authorization(f"ec2:{operation}", arn, context))
        return needed or [Authorization(f"ec2:{operation}", "*")]
    return [Authorization(f"{service}:{operation or 'Unknown'}", "*")]


# -- Lambda (REST) ----------------------------------------------------------------------------------


def _lambda(request: ApiRequest) -> list[Authorization]:
    parts = [unquote(p) for p in request.path.split("?", 1)[0].strip("/").split("/")]
    if len(parts) >= 3 and parts[1] == "functions":
        name = parts[2]
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{request.region}:{request.account}:function:{name}"
        qualifier = _first(parse_qs(request.query), "Qualifier")
        if qualifier:
            arn += f":{qualifier}"
        tail = parts[3] if len(parts) > 3 else ""
        if tail == "invocations" and request.method == "POST":
            return [Authorization("lambda:InvokeFunction", arn)]
        action = {
            ("", "GET"): "GetFunction",
            ("", "DELETE"): "DeleteFunction",
            ("configuration", "GET"): "GetFunctionConfiguration",
            ("configuration", "PUT"): "UpdateFunctionConfiguration",
            ("code", "PUT"): "UpdateFunctionCode",
            ("policy", "GET"): "GetPolicy",
            ("policy", "POST"): "AddPermission",
        }.get((tail, request.method), "UnknownFunctionOperation")
        return [Authorization(f"lambda:{action}", arn)]
    return [Authorization("lambda:ListFunctions" if request.method == "GET" else "lambda:Unknown", "*")]


def authorizations(request: ApiRequest, tags: ResourceTags) -> list[Authorization]:
    """Every permission this request needs (all must be allowed). Empty: it needs none."""
    target = request.headers.get("x-amz-target", "")
    if request.service == "s3":
        needed = _s3(request, tags)
    elif target:
        needed = _json_target(request, target)
    elif request.service == "lambda":
        needed = _lambda(request)
    else:
        needed = _query(request, tags)
    return [a for a in needed if a.action not in UNCHECKED]
