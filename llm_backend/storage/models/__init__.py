"""The tables, as SQLAlchemy 2.x typed ORM classes, one module per family of the API. The
schema itself is owned by the migrations (``migrations/versions``); these classes describe
the head revision."""

from .accounting import RateLimitCounter, UsageRecord
from .audit import AuditLogEntry
from .base import SEQUENCE_TYPE, Base, utcnow
from .batches import BatchLine, StoredBatch, StoredUpload, UploadPart
from .chat_completions import ChatCompletionMetadata, StoredChatCompletion
from .files import StoredFile, VectorStore, VectorStoreChunk, VectorStoreFile, VectorStoreFileBatch
from .keys import ApiKey
from .organization import OrganizationSetting
from .projects import Project, ProjectRateLimit, ServiceAccount
from .spend import SpendAlert, SpendLimit
from .responses import ConversationItem, McpApprovalRequest, ResponseEvent, StoredConversation, StoredResponse
from .tenancy import ForwardedObject, OwnerRename

__all__ = [
    "SEQUENCE_TYPE", "ApiKey", "AuditLogEntry", "Base", "BatchLine", "ChatCompletionMetadata", "ConversationItem", "ForwardedObject", "McpApprovalRequest",
    "OrganizationSetting", "OwnerRename", "Project", "ProjectRateLimit", "RateLimitCounter", "ResponseEvent", "ServiceAccount", "SpendAlert", "SpendLimit", "StoredBatch", "StoredChatCompletion", "StoredConversation",
    "StoredFile", "StoredResponse", "StoredUpload", "UploadPart", "UsageRecord", "VectorStore", "VectorStoreChunk",
    "VectorStoreFile", "VectorStoreFileBatch", "utcnow",
]
