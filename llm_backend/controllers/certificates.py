"""Tag ``Certificates``: this service has no certificates (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_organization_certificates = refused("listOrganizationCertificates")
upload_certificate = refused("uploadCertificate")
activate_organization_certificates = refused("activateOrganizationCertificates")
deactivate_organization_certificates = refused("deactivateOrganizationCertificates")
get_certificate = refused("getCertificate")
modify_certificate = refused("modifyCertificate")
delete_certificate = refused("deleteCertificate")
list_project_certificates = refused("listProjectCertificates")
activate_project_certificates = refused("activateProjectCertificates")
deactivate_project_certificates = refused("deactivateProjectCertificates")
