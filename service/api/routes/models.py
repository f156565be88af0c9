"""The model registry: list, inspect, activate (atomically) and delete models."""

from fastapi import APIRouter, Path, Response

from service.deps import ServicesDep
from service.registry import MODEL_ID_PATTERN
from service.schemas import ModelList, Problem, RegisteredModel
from service.views import model_view

router = APIRouter(prefix="/v1/models", tags=["models"])
ModelId = Path(
    description=f"`default` or a trained model's id (`{MODEL_ID_PATTERN}`; any other id is a 404)."
)
NOT_FOUND = {404: {"model": Problem, "description": "No such model."}}


@router.get("", response_model=ModelList, summary="List the models")
def list_models(services: ServicesDep) -> ModelList:
    active = services.registry.active_id()
    models = [model_view(e, active) for e in services.registry.entries()]
    return ModelList(items=models, models=models, total=len(models), active=active)


@router.get("/{model_id}", response_model=RegisteredModel, responses=NOT_FOUND, summary="A model")
def get_model(services: ServicesDep, model_id: str = ModelId) -> RegisteredModel:
    return model_view(services.registry.entry(model_id), services.registry.active_id())


@router.post(
    "/{model_id}/activate",
    response_model=RegisteredModel,
    responses=NOT_FOUND | {503: {"model": Problem, "description": "The model cannot be loaded."}},
    summary="Make a model the default of new requests",
)
def activate_model(services: ServicesDep, model_id: str = ModelId) -> RegisteredModel:
    """The model is loaded first, then swapped in atomically; requests already running finish on the
    model they started with."""
    entry = services.registry.activate(model_id)
    return model_view(entry, services.registry.active_id())


@router.delete(
    "/{model_id}",
    status_code=204,
    responses=NOT_FOUND | {409: {"model": Problem, "description": "The model is built in or active."}},
    summary="Delete a trained model",
)
def delete_model(services: ServicesDep, model_id: str = ModelId) -> Response:
    services.registry.delete(model_id)
    return Response(status_code=204)
