#!/usr/bin/env bash
# localstack/init/ready.d/10-sluice.sh — deploy Sluice into LocalStack, as template.yaml does in
# AWS: the secrets, the three Lambda functions (from `make lambda`'s zips, mounted at
# /sluice/bin/lambda), an HTTP API in front of the API function, the schedule group and the
# every-minute sweep, and the ECS cluster and task definition of the replicators. Ends by
# printing the API's URL.
#
# LocalStack runs it once its services are ready. Every step looks for what it would create
# first, so it also works on a LocalStack that kept its state (PERSISTENCE=1), and keeps the
# master key of the earlier run: a new key would make the sealed endpoint passwords in Redis
# unreadable.
#
# Environment (compose.yaml sets it): SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY (the
# pair clients sign with), SLUICE_MASTER_KEY (optional: 32 bytes in base64, else generated),
# ARCH (arm64 or x86_64, the architecture the zips were built for), SLUICE_REPLICATOR_IMAGE,
# SLUICE_DEPROVISION_AFTER.
#
# IAM is not enforced by LocalStack unless asked to, so the roles here carry no policies; the
# least-privilege policies are template.yaml's.
set -euo pipefail
shopt -s inherit_errexit

readonly LAMBDA_DIR=${SLUICE_LAMBDA_DIR:-/sluice/bin/lambda} # where compose.yaml mounts bin/lambda
readonly REDIS_URL=redis://redis:6379/0 # the compose service, on the network Lambda and ECS containers join
readonly CLUSTER=sluice
readonly FAMILY=sluice-replicator
readonly SCHEDULE_GROUP=sluice
readonly LOG_GROUP=/sluice/replicators

arch=${ARCH:-arm64}
image=${SLUICE_REPLICATOR_IMAGE:-sluice-replicator:latest}
deprovision_after=${SLUICE_DEPROVISION_AFTER:-48h}
: "${SLUICE_ACCESS_KEY_ID:?set SLUICE_ACCESS_KEY_ID in the localstack service environment (compose.yaml)}"
: "${SLUICE_SECRET_ACCESS_KEY:?set SLUICE_SECRET_ACCESS_KEY in the localstack service environment (compose.yaml)}"

case $arch in
arm64) cpu_arch=ARM64 ;;
x86_64) cpu_arch=X86_64 ;;
*)
	echo "sluice: ARCH is '$arch'; it must be arm64 or x86_64, the architecture of the functions' zips" >&2
	exit 1
	;;
esac
for fn in api analyze schedule; do
	if [[ ! -f $LAMBDA_DIR/$fn.zip ]]; then
		echo "sluice: $LAMBDA_DIR/$fn.zip is missing: run \`make lambda\` in the repository before \`docker compose up\`" >&2
		exit 1
	fi
done

log() { echo "sluice: $*"; }

# json_env NAME=VALUE... prints {"Variables":{...}} for --environment. The values here are
# ARNs, IDs, URLs and base64, none of which holds a quote or a backslash; refuse any that does.
json_env() {
	local pair out=""
	for pair in "$@"; do
		if [[ $pair == *[\"\\]* ]]; then
			echo "sluice: environment value of ${pair%%=*} holds a quote or a backslash" >&2
			return 1
		fi
		out+="${out:+,}\"${pair%%=*}\":\"${pair#*=}\""
	done
	printf '{"Variables":{%s}}' "$out"
}

account=$(awslocal sts get-caller-identity --query Account --output text)
region=${AWS_DEFAULT_REGION:-us-east-1} # awslocal's default region too

# ---------------------------------------------------------------- secrets

# ensure_secret NAME VALUE prints the secret's ARN, creating it with VALUE if it does not exist.
ensure_secret() {
	local arn
	if arn=$(awslocal secretsmanager describe-secret --secret-id "$1" --query ARN --output text 2>/dev/null); then
		echo "$arn"
		return
	fi
	awslocal secretsmanager create-secret --name "$1" --secret-string "$2" --query ARN --output text
}

master_key=${SLUICE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
master_key_arn=$(ensure_secret sluice/master-key "$master_key")
unset master_key
secret_key_arn=$(ensure_secret sluice/secret-access-key "$SLUICE_SECRET_ACCESS_KEY")
log "secrets: $master_key_arn, $secret_key_arn"

# ------------------------------------------------------------------ roles

# ensure_role NAME SERVICE prints the ARN of a role SERVICE may assume.
ensure_role() {
	local arn
	if arn=$(awslocal iam get-role --role-name "$1" --query Role.Arn --output text 2>/dev/null); then
		echo "$arn"
		return
	fi
	awslocal iam create-role --role-name "$1" --query Role.Arn --output text \
		--assume-role-policy-document "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"$2\"},\"Action\":\"sts:AssumeRole\"}]}"
}

function_role=$(ensure_role sluice-functions lambda.amazonaws.com)
scheduler_role=$(ensure_role sluice-scheduler scheduler.amazonaws.com)
task_role=$(ensure_role sluice-replicator ecs-tasks.amazonaws.com)
log "roles: $function_role, $scheduler_role, $task_role"

# ---------------------------------------------------------------- replicators

awslocal ecs create-cluster --cluster-name "$CLUSTER" >/dev/null # returns the cluster if it exists
if ! awslocal logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" --query 'logGroups[].logGroupName' --output text | grep -qx "$LOG_GROUP"; then
	awslocal logs create-log-group --log-group-name "$LOG_GROUP"
fi
# A new revision every run, so a changed image or environment takes effect.
task_definition=$(awslocal ecs register-task-definition --query taskDefinition.taskDefinitionArn --output text --cli-input-json "$(
	cat <<JSON
{
  "family": "$FAMILY",
  "requiresCompatibilities": ["FARGATE"],
  "networkMode": "awsvpc",
  "cpu": "1024",
  "memory": "2048",
  "runtimePlatform": {"cpuArchitecture": "$cpu_arch", "operatingSystemFamily": "LINUX"},
  "executionRoleArn": "$task_role",
  "taskRoleArn": "$task_role",
  "containerDefinitions": [{
    "name": "replicator",
    "image": "$image",
    "essential": true,
    "command": ["-task", "redis"],
    "stopTimeout": 120,
    "environment": [{"name": "SLUICE_REDIS_URL", "value": "$REDIS_URL"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {
      "awslogs-group": "$LOG_GROUP", "awslogs-region": "$region", "awslogs-stream-prefix": "replicator"}}
  }]
}
JSON
)")
# The tasks' network: LocalStack runs them as containers on the compose network whatever the
# subnets say, but RunTask wants some, so the default VPC's.
subnets=$(awslocal ec2 describe-subnets --filters Name=default-for-az,Values=true --query 'Subnets[].SubnetId' --output text | tr -s '[:space:]' ',')
subnets=${subnets%,}
security_group=$(awslocal ec2 describe-security-groups --filters Name=group-name,Values=default --query 'SecurityGroups[0].GroupId' --output text)
log "ECS: cluster $CLUSTER, task definition $task_definition, subnets $subnets, security group $security_group"

# ---------------------------------------------------------------- functions

schedule_function_arn="arn:aws:lambda:$region:$account:function:sluice-schedule"
common_env=(
	"SLUICE_REDIS_URL=$REDIS_URL"
	"SLUICE_REGION=$region"
	"SLUICE_ACCOUNT_ID=$account"
	"SLUICE_LAUNCHER=ecs" # a function cannot keep child processes: replicators are ECS tasks
	"SLUICE_DEPROVISION_AFTER=$deprovision_after"
	"SLUICE_ECS_CLUSTER=$CLUSTER"
	"SLUICE_ECS_TASK_DEFINITION=$task_definition"
	"SLUICE_ECS_CONTAINER=replicator"
	"SLUICE_ECS_SUBNETS=$subnets"
	"SLUICE_ECS_SECURITY_GROUPS=$security_group"
	"SLUICE_ACCESS_KEY_ID=$SLUICE_ACCESS_KEY_ID"
	"SLUICE_MASTER_KEY_SECRET_ARN=$master_key_arn"
	"SLUICE_SCHEDULE_GROUP=$SCHEDULE_GROUP"
	"SLUICE_SCHEDULE_TARGET_ARN=$schedule_function_arn"
	"SLUICE_SCHEDULE_ROLE_ARN=$scheduler_role"
)

# deploy_function NAME TIMEOUT NAME=VALUE... creates or updates function sluice-NAME from
# NAME.zip and prints its ARN once it is active.
deploy_function() {
	local name=sluice-$1 zip=fileb://$LAMBDA_DIR/$1.zip timeout=$2 env
	shift 2
	env=$(json_env "${common_env[@]}" "$@")
	if awslocal lambda get-function --function-name "$name" >/dev/null 2>&1; then
		awslocal lambda update-function-code --function-name "$name" --zip-file "$zip" >/dev/null
		awslocal lambda wait function-updated-v2 --function-name "$name"
		awslocal lambda update-function-configuration --function-name "$name" --timeout "$timeout" --environment "$env" >/dev/null
		awslocal lambda wait function-updated-v2 --function-name "$name"
	else
		awslocal lambda create-function --function-name "$name" --zip-file "$zip" \
			--runtime provided.al2023 --architectures "$arch" --handler bootstrap \
			--role "$function_role" --timeout "$timeout" --memory-size 256 --environment "$env" >/dev/null
		awslocal lambda wait function-active-v2 --function-name "$name"
	fi
	awslocal lambda get-function --function-name "$name" --query Configuration.FunctionArn --output text
}

deploy_function analyze 300 >/dev/null
schedule_arn=$(deploy_function schedule 60)
api_arn=$(deploy_function api 30 \
	"SLUICE_ANALYZE_FUNCTION=sluice-analyze" \
	"SLUICE_SECRET_ACCESS_KEY_SECRET_ARN=$secret_key_arn")
log "functions: sluice-api, sluice-analyze, $schedule_arn"

# ---------------------------------------------------------------- HTTP API

# Quick create: one $default route with a payload 2.0 Lambda integration on the $default stage,
# so every path (POST / and the /replications/… aliases) reaches the function. No authorizer:
# the function verifies the SigV4 signature (service dms) itself.
api_id=$(awslocal apigatewayv2 get-apis --query "Items[?Name=='sluice'].ApiId | [0]" --output text)
if [[ -z $api_id || $api_id == None ]]; then
	api_id=$(awslocal apigatewayv2 create-api --name sluice --protocol-type HTTP --target "$api_arn" --query ApiId --output text)
	awslocal lambda add-permission --function-name sluice-api --statement-id apigateway \
		--action lambda:InvokeFunction --principal apigateway.amazonaws.com \
		--source-arn "arn:aws:execute-api:$region:$account:$api_id/*" >/dev/null
fi

# ---------------------------------------------------------------- schedules

if ! awslocal scheduler get-schedule-group --name "$SCHEDULE_GROUP" >/dev/null 2>&1; then
	awslocal scheduler create-schedule-group --name "$SCHEDULE_GROUP" >/dev/null
fi
# The sweep lives in the default group, as in template.yaml, so that `sluice schedule list`
# shows users' schedules only.
if ! awslocal scheduler get-schedule --name sluice-sweep >/dev/null 2>&1; then
	awslocal scheduler create-schedule --name sluice-sweep --schedule-expression 'rate(1 minute)' \
		--flexible-time-window Mode=OFF \
		--target "{\"Arn\":\"$schedule_arn\",\"RoleArn\":\"$scheduler_role\",\"Input\":\"{\\\"action\\\":\\\"sweep\\\"}\",\"RetryPolicy\":{\"MaximumRetryAttempts\":0}}" >/dev/null
fi
log "schedules: group $SCHEDULE_GROUP, sluice-sweep every minute"

# The host name carries the API id: the path is then exactly what the client signs (a path-style
# URL's /_aws/execute-api/… prefix would not reach the function, and the signature would fail).
echo "sluice: API ready: http://$api_id.execute-api.localhost.localstack.cloud:4566"
